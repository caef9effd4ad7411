/**
 * The executable's entry. Runtimes call it with no arguments (or with CNI_COMMAND set): then it is
 * a CNI plugin. With a subcommand it is the operator's tool and the node agent.
 */
import { newRecord } from './attachment/attach.ts';
import { runCni, type ProcessIo } from './cni/skel.ts';
import { decodeStdin } from './cni/stdin.ts';
import { SUPPORTED_VERSIONS } from './cni/version.ts';
import { tcqosCommands } from './commands/index.ts';
import { derivePolicy } from './config/derive.ts';
import { linksFromJson } from './netns/observe.ts';
import type { OperatorIo } from './operator/cli.ts';
import { OPERATOR_COMMANDS } from './operator/commands.ts';
import { setupLines } from './plan/batch.ts';
import { planAttachment } from './plan/tree.ts';
import { parseJsonSequence } from './text/json.ts';

export const TCQOS_VERSION = '0.1.0';

const USAGE = `tcqos ${TCQOS_VERSION}: a chained CNI plugin shaping pod bandwidth with HTB inside the pod netns.
Runtimes call it with CNI_COMMAND set (ADD, DEL, CHECK, VERSION, STATUS, GC; CNI ${SUPPORTED_VERSIONS.join(', ')}).
Operator commands (tcqos COMMAND --help for each):
${OPERATOR_COMMANDS.map((entry) => `  ${entry.name.padEnd(10)} ${entry.summary}`).join('\n')}
  ${'version'.padEnd(10)} print the version
`;

/** A tcqos entry as runtimes send it, for warmUp: both directions, a class, runtime values (no CIDRs: ip-num stays out of the snapshot). */
const WARM_UP_STDIN = JSON.stringify({
  cniVersion: '1.0.0',
  name: 'warm-up',
  type: 'tcqos',
  capabilities: { bandwidth: true },
  egress: { rate: '50mbit', classes: [{ name: 'a', rate: '10mbit', ceil: '20mbit', priority: 1 }] },
  ingress: { rate: '50mbit' },
  runtimeConfig: { bandwidth: { IngressRate: 20_000_000, IngressBurst: 4_294_967_295, EgressRate: 10_000_000, EgressBurst: 4_294_967_295 } },
  prevResult: { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: '/var/run/netns/warm-up' }], ips: [] },
});
/** What `ip -j -d link show` prints, shortened, for warmUp. */
const WARM_UP_LINKS = '[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP"],"mtu":65536,"qdisc":"noqueue","txqlen":1000,"linkinfo":{"info_kind":"ifb"}},{"ifindex":2,"ifname":"eth0","flags":["UP"],"mtu":1500,"qdisc":"noqueue"}]';

/**
 * Runs the pure, side-effect-free ADD path once while the startup snapshot is built, so its code is
 * compiled into the snapshot instead of on a runtime's clock: decoding stdin, deriving the policy,
 * the registry record, reading a link listing, planning and the batch lines. Nothing here spawns,
 * reads the environment or touches a file; the derivation's promise settles in microtasks, before
 * the snapshot is taken.
 */
export function warmUp(): void {
  const { config } = decodeStdin(Buffer.from(WARM_UP_STDIN));
  linksFromJson(parseJsonSequence(WARM_UP_LINKS).at(-1)!);
  void derivePolicy({ config }).then((derived) => {
    const record = newRecord({ containerId: 'warm-up', ifname: 'eth0', netns: '/var/run/netns/warm-up', network: 'warm-up', config, derived });
    setupLines(planAttachment(derived.policy, 'eth0', 1500, record.classIds));
  });
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
