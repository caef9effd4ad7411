/**
 * Structured logs (pino) to the configured file or to stderr, never stdout. pino is loaded on the
 * first line actually written, so an invocation that logs nothing does not pay for it (~20 ms);
 * lines are written in order once it is there, before the process exits.
 */
import type { Logger as PinoLogger } from 'pino';

export interface Logger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
  debug(fields: object, message: string): void;
}

export interface LogSettings {
  readonly logFile?: string | undefined;
  readonly logLevel: string;
}

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** Every line logged so far, in order: settles once the last one is written (or failed). */
let written: Promise<void> = Promise.resolve();

/** Resolves when every line logged so far is written, so the process may exit. */
export function logsWritten(): Promise<void> {
  return written;
}

export function createLogger(settings: LogSettings, bindings: Record<string, string>): Logger {
  const threshold = LEVELS.indexOf(settings.logLevel);
  let pino: Promise<PinoLogger> | undefined;
  const open = async (): Promise<PinoLogger> => {
    const load = await import('pino');
    const destination = load.destination({ dest: settings.logFile ?? 2, sync: true, mkdir: true });
    return load.pino({ level: settings.logLevel, base: { pid: process.pid, ...bindings } }, destination);
  };
  const at = (level: 'info' | 'warn' | 'error' | 'debug') => (fields: object, message: string) => {
    if (LEVELS.indexOf(level) < threshold) return;
    pino ??= open();
    written = written
      .then(async () => (await pino!)[level](fields, message))
      // an unwritable log file must not turn a working ADD into a failure
      .catch(() => undefined);
  };
  return { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') };
}
