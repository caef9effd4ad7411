/**
 * The executable's entry. Runtimes call it with CNI_COMMAND set, and with no arguments: then it is a
 * CNI plugin, whatever else it is given. With a subcommand it is the operator's tool and the node
 * agent. Run bare in a terminal (no CNI_COMMAND, standard input a terminal: no runtime calls it so),
 * it says what it is, as the reference plugins do, instead of answering with a CNI error.
 */
import { isatty } from 'node:tty';
import { runCni, type ProcessIo } from './cni/skel.ts';
import { SUPPORTED_VERSIONS } from './cni/version.ts';
import { tcqosCommands } from './commands/index.ts';
import type { SessionOptions } from './netns/session.ts';
import type { CliIo } from './cli/runner.ts';
import { SUBCOMMANDS } from './cli/subcommands.ts';
import { nearest } from './config/suggest.ts';

export const TCQOS_VERSION = '0.1.0';

/** What the reference plugins print when run bare ("CNI bandwidth plugin v1.4.0" and the versions). */
const ABOUT = `CNI tcqos plugin v${TCQOS_VERSION}
CNI protocol versions supported: ${SUPPORTED_VERSIONS.join(', ')}
Runtimes run it with CNI_COMMAND set; "tcqos --help" lists the operator commands.
`;

const USAGE = `tcqos ${TCQOS_VERSION}: a chained CNI plugin shaping pod bandwidth with HTB (in the pod netns, or on
the host end of a veth pod). Runtimes call it with CNI_COMMAND set (ADD, DEL, CHECK, VERSION, STATUS,
GC; CNI ${SUPPORTED_VERSIONS.join(', ')}).

Usage: tcqos COMMAND [flags]        ("tcqos COMMAND --help" for each)

Commands:
${SUBCOMMANDS.filter((entry) => !entry.hidden)
  .map((entry) => `  ${entry.name.padEnd(11)} ${entry.summary}`)
  .join('\n')}
  ${'version'.padEnd(11)} print the version
  ${'help'.padEnd(11)} this text, or "help COMMAND" for a command's

Exit status of the commands: 0 done, 1 refused, failed or nothing found (one line on stderr says
why), 2 bad usage.
`;

export interface MainIo extends ProcessIo, CliIo {
  readonly argv: readonly string[];
  /** Whether standard input is a terminal (default: asked of fd 0). */
  readonly stdinIsTerminal?: boolean;
}

export async function main(io: MainIo, tools: SessionOptions = {}): Promise<number> {
  const [subcommand, ...rest] = io.argv;
  if (io.env['CNI_COMMAND'] !== undefined) return runCni(io, tcqosCommands(tools));
  if (subcommand === undefined) {
    if (io.stdinIsTerminal ?? isatty(0)) {
      io.writeStderr(ABOUT);
      return 0;
    }
    return runCni(io, tcqosCommands(tools));
  }
  if (subcommand === 'version' || subcommand === '--version') {
    io.writeStdout(`tcqos ${TCQOS_VERSION}\n`);
    return 0;
  }
  if (subcommand === 'help' || subcommand === '--help' || subcommand === '-h') {
    const topic = rest[0] === undefined ? undefined : SUBCOMMANDS.find((candidate) => candidate.name === rest[0]);
    if (topic) return topic.run(['--help'], io);
    if (rest[0] !== undefined) return unknown(io, rest[0]);
    io.writeStdout(USAGE);
    return 0;
  }
  const entry = SUBCOMMANDS.find((candidate) => candidate.name === subcommand);
  if (entry) return entry.run(rest, io);
  return unknown(io, subcommand);
}

function unknown(io: CliIo, name: string): number {
  const guess = nearest(name, SUBCOMMANDS.filter((entry) => !entry.hidden).map((entry) => entry.name));
  io.writeStderr(`tcqos: unknown command ${JSON.stringify(name)}${guess ? ` (did you mean ${guess}?)` : ''}; "tcqos --help" lists the commands\n`);
  return 2;
}
