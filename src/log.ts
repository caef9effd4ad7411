/**
 * Structured logs (pino) to the configured file or to stderr, never stdout. pino is loaded on the
 * first line actually written, so an invocation that logs nothing does not pay for it (~20 ms);
 * lines are written in order once it is there, before the process exits. Each line carries its
 * level's name ("level":"info"), which log tools read without knowing pino's numbers.
 *
 * tcqos runs as root, so the log file is opened as root would open a file in a place it does not
 * own: never through a symlink (O_NOFOLLOW), created 0600 (only root reads what pods were given),
 * and only if it is a regular file (a FIFO would block the plugin; O_NONBLOCK makes the open fail
 * instead). A log file refused so, or that cannot be opened, sends the lines to stderr, after one
 * saying why: logging never fails an ADD.
 */
import { closeSync, constants, fstatSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
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

const LOG_FILE_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** The log file, opened for appending as described above; throws with the reason when it will not do. */
export function openLogFile(path: string): number {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  let fd: number;
  try {
    fd = openSync(path, LOG_FILE_FLAGS, 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new Error(`${path} is a symlink; tcqos does not follow one to write as root`);
    if (code === 'ENXIO') throw new Error(`${path} is a FIFO nobody reads`);
    throw error;
  }
  if (!fstatSync(fd).isFile()) {
    closeSync(fd);
    throw new Error(`${path} is not a regular file`);
  }
  return fd;
}

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
    let fd = 2;
    let refused: string | undefined;
    try {
      if (settings.logFile) fd = openLogFile(settings.logFile);
    } catch (error) {
      refused = (error as Error).message;
    }
    const logger = load.pino(
      { level: settings.logLevel, base: { pid: process.pid, ...bindings }, formatters: { level: (label) => ({ level: label }) } },
      load.destination({ dest: fd, sync: true }),
    );
    if (refused) logger.warn({ logFile: settings.logFile, error: refused }, 'cannot log to logFile; logging to stderr');
    return logger;
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
