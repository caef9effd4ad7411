/**
 * The executable's entry. Runtimes call it with no arguments (or with CNI_COMMAND set): then it is
 * a CNI plugin. With a subcommand it is the operator's tool and the node agent.
 */
import { runCni, type ProcessIo } from './cni/skel.ts';
import { SUPPORTED_VERSIONS } from './cni/version.ts';
import { tcqosCommands } from './commands/index.ts';
import { IMPLICIT_DEFAULT_CLASS } from './config/normalize.ts';
import { validateConfig } from './config/validate-config.generated.js';
import type { OperatorIo } from './operator/cli.ts';
import { OPERATOR_COMMANDS } from './operator/commands.ts';
import { setupLines } from './plan/batch.ts';
import { planAttachment } from './plan/tree.ts';

export const TCQOS_VERSION = '0.1.0';

const USAGE = `tcqos ${TCQOS_VERSION}: a chained CNI plugin shaping pod bandwidth with HTB inside the pod netns.
Runtimes call it with CNI_COMMAND set (ADD, DEL, CHECK, VERSION, STATUS, GC; CNI ${SUPPORTED_VERSIONS.join(', ')}).
Operator commands (tcqos COMMAND --help for each):
${OPERATOR_COMMANDS.map((entry) => `  ${entry.name.padEnd(10)} ${entry.summary}`).join('\n')}
  ${'version'.padEnd(10)} print the version
`;

/**
 * Runs the pure, side-effect-free paths once while the startup snapshot is built, so their code is
 * compiled into it. Nothing here spawns, reads the environment or touches a file.
 */
export function warmUp(): void {
  validateConfig({ cniVersion: '1.0.0', type: 'tcqos', egress: { rate: '10mbit', classes: [{ name: 'a', rate: '5mbit' }] } });
  const direction = {
    rate: 10_000_000,
    ceil: 10_000_000,
    classes: [{ name: IMPLICIT_DEFAULT_CLASS, rate: 10_000_000, ceil: 10_000_000, priority: 0, unshaped: false }],
    defaultClass: IMPLICIT_DEFAULT_CLASS,
    rules: [],
  };
  setupLines(planAttachment({ egress: direction, ingress: direction }, 'eth0', 1500));
}

export async function main(io: ProcessIo & OperatorIo & { argv: readonly string[] }): Promise<number> {
  const [subcommand, ...rest] = io.argv;
  if (subcommand === undefined || io.env['CNI_COMMAND'] !== undefined) return runCni(io, tcqosCommands);
  if (subcommand === 'version' || subcommand === '--version') {
    io.writeStdout(`tcqos ${TCQOS_VERSION}\n`);
    return 0;
  }
  const entry = OPERATOR_COMMANDS.find((candidate) => candidate.name === subcommand);
  if (entry) return entry.run(rest, io);
  if (subcommand === 'help' || subcommand === '--help') {
    io.writeStdout(USAGE);
    return 0;
  }
  io.writeStderr(`tcqos: unknown command ${JSON.stringify(subcommand)}\n${USAGE}`);
  return 2;
}
