/**
 * The executable's entry. Runtimes call it with no arguments (or with CNI_COMMAND set): then it is
 * a CNI plugin. With a subcommand it is the operator's tool and the node agent.
 */
import { runCni, type ProcessIo } from './cni/skel.ts';
import { SUPPORTED_VERSIONS } from './cni/version.ts';
import { tcqosCommands } from './commands/index.ts';
import type { SessionOptions } from './netns/session.ts';
import type { CliIo } from './cli/runner.ts';
import { SUBCOMMANDS } from './cli/subcommands.ts';

export const TCQOS_VERSION = '0.1.0';

const USAGE = `tcqos ${TCQOS_VERSION}: a chained CNI plugin shaping pod bandwidth with HTB inside the pod netns.
Runtimes call it with CNI_COMMAND set (ADD, DEL, CHECK, VERSION, STATUS, GC; CNI ${SUPPORTED_VERSIONS.join(', ')}).
Operator commands (tcqos COMMAND --help for each):
${SUBCOMMANDS.map((entry) => `  ${entry.name.padEnd(10)} ${entry.summary}`).join('\n')}
  ${'version'.padEnd(10)} print the version
`;

export async function main(io: ProcessIo & CliIo & { argv: readonly string[] }, tools: SessionOptions = {}): Promise<number> {
  const [subcommand, ...rest] = io.argv;
  if (subcommand === undefined || io.env['CNI_COMMAND'] !== undefined) return runCni(io, tcqosCommands(tools));
  if (subcommand === 'version' || subcommand === '--version') {
    io.writeStdout(`tcqos ${TCQOS_VERSION}\n`);
    return 0;
  }
  const entry = SUBCOMMANDS.find((candidate) => candidate.name === subcommand);
  if (entry) return entry.run(rest, io);
  if (subcommand === 'help' || subcommand === '--help') {
    io.writeStdout(USAGE);
    return 0;
  }
  io.writeStderr(`tcqos: unknown command ${JSON.stringify(subcommand)}\n${USAGE}`);
  return 2;
}
