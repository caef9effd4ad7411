/** `tcqos list`: the node's attachments from the registry, and each uplink's guaranteed total against its capacity. */
import { uplinkUsage, type UplinkUsage } from '../attachment/admission.ts';
import type { DirectionPolicyJson } from '../config/policy.ts';
import type { AttachmentRecord } from '../state/record.ts';
import type { Subcommand } from '../cli/runner.ts';
import { registryFrom, STATE_DIR_HELP, STATE_DIR_OPTION } from './common.ts';
import { humanRate, table } from './format.ts';

const USAGE = `Usage: tcqos list [--json] [--state-dir DIR]

The attachments tcqos shapes on this node (from its registry): container, pod, interface, network,
per direction the guaranteed rate / ceiling and what set them (config, runtime, annotation,
operator), and each uplink's guaranteed total against its capacity.

  --json            one JSON document: {"attachments": [...], "uplinks": [...], "problems": [...]}
${STATE_DIR_HELP}

Exit status: 0 listed (unreadable registry records are named on stderr), 2 bad usage.
`;

function direction(record: AttachmentRecord, name: 'egress' | 'ingress'): string {
  const policy: DirectionPolicyJson | undefined = record.policy[name];
  if (!policy) return '-';
  const rates = policy.ceil === policy.rate ? humanRate(policy.rate) : `${humanRate(policy.rate)} / ${humanRate(policy.ceil)}`;
  return `${rates} (${record.sources[name] ?? 'config'}, ${policy.classes.length} class${policy.classes.length === 1 ? '' : 'es'})`;
}

function uplinkLine(usage: UplinkUsage): string[] {
  const share = (guaranteed: number) => `${humanRate(guaranteed)} (${((guaranteed / usage.capacity) * 100).toFixed(1)}%)`;
  return [usage.name, humanRate(usage.capacity), share(usage.egress), share(usage.ingress), String(usage.attachments)];
}

export const listCommand: Subcommand = {
  name: 'list',
  summary: "the node's attachments: pods, directions, rates, uplinks",
  usage: USAGE,
  options: { json: { type: 'boolean' }, ...STATE_DIR_OPTION },
  async run(values, _positionals, io) {
    const { records, problems } = registryFrom(values, io).list();
    for (const problem of problems) io.writeStderr(`tcqos list: unreadable registry record ${problem}\n`);
    const uplinks = uplinkUsage(records);
    if (values['json']) {
      const attachments = records.map((record) => ({
        containerId: record.containerId,
        ifname: record.ifname,
        netns: record.netns,
        network: record.network,
        ...(record.pod ? { pod: record.pod } : {}),
        policy: record.policy,
        sources: record.sources,
        ...(record.uplink ? { uplink: record.uplink } : {}),
        createdAt: record.createdAt,
        updatedAt: record.updatedAt,
      }));
      io.writeStdout(`${JSON.stringify({ attachments, uplinks, problems }, null, 2)}\n`);
      return 0;
    }
    if (!records.length) {
      io.writeStdout('no attachments are shaped on this node\n');
      return 0;
    }
    io.writeStdout(
      table(
        ['CONTAINER', 'POD', 'IFACE', 'NETWORK', 'EGRESS rate / ceil (source)', 'INGRESS rate / ceil (source)', 'UPLINK'],
        records.map((record) => [
          record.containerId.slice(0, 12),
          record.pod ? `${record.pod.namespace}/${record.pod.name}` : '-',
          record.ifname,
          record.network || '-',
          direction(record, 'egress'),
          direction(record, 'ingress'),
          record.uplink?.name ?? '-',
        ]),
      ),
    );
    if (uplinks.length) {
      io.writeStdout(`\n${table(['UPLINK', 'CAPACITY', 'EGRESS GUARANTEED', 'INGRESS GUARANTEED', 'ATTACHMENTS'], uplinks.map(uplinkLine))}`);
    }
    return 0;
  },
};
