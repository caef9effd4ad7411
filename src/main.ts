/**
 * The executable's entry. Runtimes call it with no arguments: then it is a CNI plugin. With a
 * subcommand it is the operator's tool (`tcqos version` now; `tcqos stats` and `tcqos update`
 * have their place here).
 */
import { runCni, type ProcessIo } from './cni/skel.ts';
import { SUPPORTED_VERSIONS } from './cni/version.ts';
import { tcqosCommands } from './commands/index.ts';

export const TCQOS_VERSION = '0.1.0';

const USAGE = `tcqos ${TCQOS_VERSION}: a chained CNI plugin shaping pod bandwidth with HTB inside the pod netns.
Runtimes call it with CNI_COMMAND set (ADD, DEL, CHECK, VERSION, STATUS, GC; CNI ${SUPPORTED_VERSIONS.join(', ')}).
Operator commands:
  tcqos version     print the version
`;

export async function main(io: ProcessIo & { argv: readonly string[]; writeStderr(text: string): void }): Promise<number> {
  const [subcommand] = io.argv;
  if (subcommand === undefined || io.env['CNI_COMMAND'] !== undefined) return runCni(io, tcqosCommands);
  if (subcommand === 'version' || subcommand === '--version') {
    io.writeStdout(`tcqos ${TCQOS_VERSION}\n`);
    return 0;
  }
  io.writeStderr(USAGE);
  return subcommand === 'help' || subcommand === '--help' ? 0 : 2;
}
