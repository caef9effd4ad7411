/**
 * The subcommand side of the binary: `tcqos <subcommand> [flags]`. Each subcommand declares its
 * flags for node:util parseArgs and its help text; this module parses, prints help, and turns
 * failures into one line on stderr and an exit code (0 done, 1 failed, 2 bad usage). Like kubectl's
 * flags, a flag that takes a value takes the next argument whatever it looks like (`--interval -1`
 * is the value -1, refused by the subcommand in its own words), and the parser's own wording never
 * reaches the user.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { nearest } from '../config/suggest.ts';
import { EXIT, exitCodeOf, UsageError } from './errors.ts';

export interface CliIo {
  readonly env: NodeJS.ProcessEnv;
  readStdin(): Promise<Buffer>;
  writeStdout(text: string): void;
  writeStderr(text: string): void;
}

export type OptionValues = Record<string, string | boolean | string[] | boolean[] | undefined>;

type Options = NonNullable<ParseArgsConfig['options']>;

/** One subcommand: its flags, help text, and what it does. */
export interface Subcommand {
  readonly name: string;
  readonly summary: string;
  /** The whole `tcqos NAME --help` text. */
  readonly usage: string;
  readonly options: Options;
  /** The values a flag may take (checked before `run`, offered by shell completion). */
  readonly choices?: Readonly<Record<string, readonly string[]>>;
  readonly allowPositionals?: boolean;
  /** Resolves to the exit code; throws a CliError (UsageError, OperatorError) with a one-line message. */
  run(values: OptionValues, positionals: string[], io: CliIo): Promise<number>;
}

export async function runSubcommand(command: Subcommand, argv: readonly string[], io: CliIo): Promise<number> {
  const help = `(see "tcqos ${command.name} --help")`;
  try {
    const args = joinValues(argv, command.options);
    const flags = args.includes('--') ? args.slice(0, args.indexOf('--')) : args;
    if (flags.includes('--help') || flags.includes('-h')) {
      io.writeStdout(command.usage.endsWith('\n') ? command.usage : `${command.usage}\n`);
      return EXIT.done;
    }
    let parsed;
    try {
      parsed = parseArgs({ args, options: command.options, allowPositionals: command.allowPositionals ?? false, strict: true });
    } catch (error) {
      throw new UsageError(`${parseProblem(error, command.options)} ${help}`);
    }
    for (const [flag, allowed] of Object.entries(command.choices ?? {})) {
      const value = parsed.values[flag];
      if (typeof value === 'string' && !allowed.includes(value)) throw new UsageError(`--${flag} is one of ${allowed.join(', ')}, not ${JSON.stringify(value)}`);
    }
    return await command.run(parsed.values as OptionValues, parsed.positionals, io);
  } catch (error) {
    const code = exitCodeOf(error);
    const message = oneLine(error instanceof Error ? error.message : String(error));
    io.writeStderr(`tcqos ${command.name}: ${message}${code === EXIT.usage && !message.includes(help) ? ` ${help}` : ''}\n`);
    return code ?? EXIT.failed;
  }
}

/** `--flag value` becomes `--flag=value` for every flag that takes a value, so the value may start with "-". */
function joinValues(argv: readonly string[], options: Options): string[] {
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      args.push(...argv.slice(i));
      break;
    }
    const name = /^--([^=]+)$/.exec(arg)?.[1];
    if (name !== undefined && options[name]?.type === 'string' && i + 1 < argv.length) {
      args.push(`${arg}=${argv[++i]!}`);
    } else {
      args.push(arg);
    }
  }
  return args;
}

/** What was wrong with the flags, in tcqos's words (node's parser speaks of "options" and "arguments"). */
function parseProblem(error: unknown, options: Options): string {
  const { code, message } = error as { code?: string; message?: string };
  const quoted = /'([^']*)'/.exec(message ?? '')?.[1] ?? '';
  const flag = quoted.split(' ')[0]!;
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const known = Object.keys(options).map((name) => `--${name}`);
      const guess = nearest(flag, known);
      return `unknown flag ${flag}${guess ? ` (did you mean ${guess}?)` : ''}`;
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return /does not take an argument/.test(message ?? '') ? `${flag} takes no value` : `${flag} needs a value`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${JSON.stringify(quoted)}`;
    default:
      return 'cannot read the flags';
  }
}

/** A message on one line: line breaks and other control characters become spaces. */
export function oneLine(message: string): string {
  // eslint-disable-next-line no-control-regex
  return message.replace(/\s*[\u0000-\u001f\u007f]+\s*/g, ' ').trim();
}
