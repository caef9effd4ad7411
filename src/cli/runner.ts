/**
 * The subcommand side of the binary: `tcqos <subcommand> [flags]`. Each subcommand declares its
 * flags for node:util parseArgs and its help text; this module parses, prints help, and turns
 * failures into one line on stderr and an exit code (0 done, 1 failed, 2 bad usage).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { EXIT, exitCodeOf } from './errors.ts';

export interface CliIo {
  readonly env: NodeJS.ProcessEnv;
  readStdin(): Promise<Buffer>;
  writeStdout(text: string): void;
  writeStderr(text: string): void;
}

export type OptionValues = Record<string, string | boolean | string[] | boolean[] | undefined>;

/** One subcommand: its flags, help text, and what it does. */
export interface Subcommand {
  readonly name: string;
  readonly summary: string;
  /** The whole `tcqos NAME --help` text. */
  readonly usage: string;
  readonly options: NonNullable<ParseArgsConfig['options']>;
  readonly allowPositionals?: boolean;
  /** Resolves to the exit code; throws a CliError (UsageError, OperatorError) with a one-line message. */
  run(values: OptionValues, positionals: string[], io: CliIo): Promise<number>;
}

export async function runSubcommand(command: Subcommand, argv: readonly string[], io: CliIo): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.writeStdout(command.usage.endsWith('\n') ? command.usage : `${command.usage}\n`);
    return EXIT.done;
  }
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: [...argv], options: command.options, allowPositionals: command.allowPositionals ?? false, strict: true });
    } catch (error) {
      io.writeStderr(`tcqos ${command.name}: ${(error as Error).message.split('\n')[0]} (see "tcqos ${command.name} --help")\n`);
      return EXIT.usage;
    }
    return await command.run(parsed.values as OptionValues, parsed.positionals, io);
  } catch (error) {
    io.writeStderr(`tcqos ${command.name}: ${error instanceof Error ? error.message : String(error)}\n`);
    return exitCodeOf(error) ?? EXIT.failed;
  }
}
