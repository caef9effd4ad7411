/**
 * The operator side of the binary: `tcqos <subcommand> [flags]`. Each subcommand declares its flags
 * for node:util parseArgs and its help text; this module parses, prints help, and turns failures
 * into one line on stderr and an exit code (0 done, 1 failed, 2 bad usage).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export interface OperatorIo {
  readonly env: NodeJS.ProcessEnv;
  readStdin(): Promise<Buffer>;
  writeStdout(text: string): void;
  writeStderr(text: string): void;
}

export type OptionValues = Record<string, string | boolean | string[] | boolean[] | undefined>;

/** One subcommand: its flags, help text, and what it does. */
export interface OperatorCommand {
  readonly name: string;
  readonly summary: string;
  /** The whole `tcqos NAME --help` text. */
  readonly usage: string;
  readonly options: NonNullable<ParseArgsConfig['options']>;
  readonly allowPositionals?: boolean;
  /** Resolves to the exit code; throws UsageError or OperatorError with a one-line message. */
  run(values: OptionValues, positionals: string[], io: OperatorIo): Promise<number>;
}

/** Bad flags or arguments: what is wrong and what to write instead (exit 2). */
export class UsageError extends Error {}
/** The operation failed: what and what to do (exit 1). */
export class OperatorError extends Error {}

export const EXIT = { done: 0, failed: 1, usage: 2 } as const;

export async function runOperatorCommand(command: OperatorCommand, argv: readonly string[], io: OperatorIo): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.writeStdout(command.usage.endsWith('\n') ? command.usage : `${command.usage}\n`);
    return EXIT.done;
  }
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: [...argv], options: command.options, allowPositionals: command.allowPositionals ?? false, strict: true });
    } catch (error) {
      throw new UsageError(`${(error as Error).message.split('\n')[0]} (see "tcqos ${command.name} --help")`);
    }
    return await command.run(parsed.values as OptionValues, parsed.positionals, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.writeStderr(`tcqos ${command.name}: ${error.message}\n`);
      return EXIT.usage;
    }
    io.writeStderr(`tcqos ${command.name}: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT.failed;
  }
}
