/** `tcqos list`: the node's attachments from the registry, and each uplink's guaranteed total against its capacity. */
import { uplinkUsage, type UplinkUsage } from '../attachment/admission.ts';
import type { DirectionPolicyJson } from '../config/policy.ts';
import type { AttachmentRecord } from '../state/record.ts';
import type { Subcommand } from '../cli/runner.ts';
import { isStale, registryFrom, STATE_DIR_HELP, STATE_DIR_OPTION } from './common.ts';
import { byAttachment, humanRate, right, table } from './format.ts';

const USAGE = `Usage: tcqos list [--json] [--state-dir DIR]

The attachments tcqos shapes on this node (from its registry): container, pod, interface, network,
per direction the guaranteed rate / ceiling and what set them (config, runtime, annotation,
operator, or "policy NAMESPACE/NAME" for a BandwidthPolicy), and each uplink's guaranteed total against its capacity.

An attachment is STALE when its network namespace is gone (the pod is gone and the runtime never
sent DEL, e.g. after a crash): it shapes nothing and counts in no uplink total. "tcqos gc" drops it.

  --json            one JSON document: {"attachments": [...], "uplinks": [...], "problems": [...]},
                    each attachment with "stale": true or false and, where a
                    BandwidthPolicy applies, "bandwidthPolicies": {"egress": "ns/name", ...}
${STATE_DIR_HELP}

Exit status: 0 listed (unreadable registry records are named on stderr), 2 bad usage.
`;

function direction(record: AttachmentRecord, name: 'egress' | 'ingress'): string {
  const policy: DirectionPolicyJson | undefined = record.policy[name];
  if (!policy) return '-';
  const rates = policy.ceil === policy.rate ? humanRate(policy.rate) : `${humanRate(policy.rate)} / ${humanRate(policy.ceil)}`;
  return `${rates} (${sourceOf(record, name)}, ${policy.classes.length} class${policy.classes.length === 1 ? '' : 'es'})`;
}

/** What set a direction; a BandwidthPolicy is named, since several may select pods on one node. */
function sourceOf(record: AttachmentRecord, name: 'egress' | 'ingress'): string {
  const source = record.sources[name] ?? 'config';
  const policy = source === 'policy' ? record.bandwidthPolicy?.[name]?.name : undefined;
  return policy ? `policy ${policy}` : source;
}

function uplinkLine(usage: UplinkUsage): string[] {
  const share = (guaranteed: number) => `${humanRate(guaranteed)} (${((guaranteed / usage.capacity) * 100).toFixed(1)}%)`;
  return [usage.name, humanRate(usage.capacity), humanRate(usage.reserve), usage.enforced ? 'yes' : 'no', share(usage.egress), share(usage.ingress), String(usage.attachments)];
}

export const listCommand: Subcommand = {
  name: 'list',
  summary: "the node's attachments: pods, directions, rates, uplinks",
  usage: USAGE,
  options: { json: { type: 'boolean' }, ...STATE_DIR_OPTION },
  async run(values, _positionals, io) {
    const listed = registryFrom(values, io).list();
    for (const problem of listed.problems) io.writeStderr(`tcqos list: unreadable registry record ${problem}\n`);
    const records = [...listed.records].sort(byAttachment);
    const stale = new Set(records.filter(isStale));
    const uplinks = uplinkUsage(records.filter((record) => !stale.has(record)));
    if (values['json']) {
      const attachments = records.map((record) => ({
        containerId: record.containerId,
        ifname: record.ifname,
        netns: record.netns,
        stale: stale.has(record),
        network: record.network,
        ...(record.pod ? { pod: record.pod } : {}),
        policy: record.policy,
        sources: record.sources,
        ...(record.bandwidthPolicy ? { bandwidthPolicies: Object.fromEntries(Object.entries(record.bandwidthPolicy).map(([direction, input]) => [direction, input.name])) } : {}),
        ...(record.uplink ? { uplink: record.uplink } : {}),
        ...(record.host ? { hostInterface: record.host.interface } : {}),
        createdAt: record.createdAt,
        updatedAt: record.updatedAt,
      }));
      io.writeStdout(`${JSON.stringify({ attachments, uplinks, problems: listed.problems }, null, 2)}\n`);
      return 0;
    }
    if (!records.length) {
      io.writeStderr('no attachments are shaped on this node\n');
      return 0;
    }
    io.writeStdout(
      table(
        ['CONTAINER', 'POD', 'IFACE', 'NETWORK', 'EGRESS rate / ceil (source)', 'INGRESS rate / ceil (source)', 'UPLINK', 'STALE'],
        records.map((record) => [
          record.containerId.slice(0, 12),
          record.pod ? `${record.pod.namespace}/${record.pod.name}` : '-',
          record.ifname,
          record.network || '-',
          direction(record, 'egress'),
          direction(record, 'ingress'),
          record.uplink?.name ?? '-',
          stale.has(record) ? 'yes' : 'no',
        ]),
      ),
    );
    if (uplinks.length) {
      io.writeStdout(`\n${table(['UPLINK', right('CAPACITY'), right('RESERVE'), 'ENFORCED', right('EGRESS GUARANTEED'), right('INGRESS GUARANTEED'), right('ATTACHMENTS')], uplinks.map(uplinkLine))}`);
    }
    if (stale.size) {
      io.writeStderr(`${stale.size} stale attachment${stale.size === 1 ? '' : 's'} (network namespace gone, counted in no uplink total): "tcqos gc" drops ${stale.size === 1 ? 'its record' : 'their records'}\n`);
    }
    return 0;
  },
};
