/**
 * Per attachment, direction and class: what is configured and what the kernel counted. Reads only
 * (no lock): the counters of a class being changed are read before or after, never torn.
 */
import { DIRECTIONS, type Direction, type DirectionPolicyJson } from '../config/policy.ts';
import { readAttachmentState, readClasses } from '../netns/observe.ts';
import { withNetns, type NetnsSession, type SessionOptions } from '../netns/session.ts';
import type { AttachmentRecord, PodIdentity } from '../state/record.ts';
import { pathExists, type Registry } from '../state/registry.ts';
import { classId, ifbName, ROOT_CLASS_MINOR } from '../tc/handles.ts';
import type { ClassInfo, QdiscInfo, TcCounters } from '../tc/types.ts';

export interface ClassStats extends TcCounters {
  readonly name: string;
  /** "7c05:10" */
  readonly classId: string;
  /** Configured, bit/s. */
  readonly rate: number;
  readonly ceil: number;
}

export interface DirectionStats extends TcCounters {
  readonly direction: Direction;
  readonly device: string;
  readonly rate: number;
  readonly ceil: number;
  readonly classes: readonly ClassStats[];
}

export interface AttachmentStats {
  readonly containerId: string;
  readonly ifname: string;
  readonly netns: string;
  readonly network: string;
  readonly pod?: PodIdentity;
  readonly directions: readonly DirectionStats[];
}

export interface StatsFilter {
  readonly containerId?: string;
  readonly ifname?: string;
}

const ZERO: TcCounters = { bytes: 0, packets: 0, drops: 0, overlimits: 0, backlogBytes: 0 };

export async function collectStats(registry: Registry, filter: StatsFilter = {}, tools: SessionOptions = {}): Promise<AttachmentStats[]> {
  const records = registry
    .list()
    .records.filter((record) => (filter.containerId === undefined || record.containerId === filter.containerId) && (filter.ifname === undefined || record.ifname === filter.ifname))
    .filter((record) => pathExists(record.netns));
  const stats: AttachmentStats[] = [];
  for (const record of records) {
    try {
      stats.push(await withNetns(record.netns, tools, (session) => attachmentStats(session, record)));
    } catch {
      // The pod went away between the listing and the read: it has no counters any more.
    }
  }
  return stats;
}

async function attachmentStats(session: NetnsSession, record: AttachmentRecord): Promise<AttachmentStats> {
  const state = await readAttachmentState(session, record.ifname);
  const directions: DirectionStats[] = [];
  for (const direction of DIRECTIONS) {
    const policy = record.policy[direction];
    if (!policy) continue;
    const device = direction === 'egress' ? record.ifname : ifbName(record.ifname);
    const root = state.qdiscs.find((q) => q.dev === device && q.root);
    if (!root) continue;
    const classes = await readClasses(session, device);
    directions.push({
      direction,
      device,
      rate: policy.rate,
      ceil: policy.ceil,
      ...root.counters,
      classes: classStats(policy, record.classIds[direction] ?? {}, classes, state.qdiscs.filter((q) => q.dev === device)),
    });
  }
  return {
    containerId: record.containerId,
    ifname: record.ifname,
    netns: record.netns,
    network: record.network,
    ...(record.pod ? { pod: record.pod } : {}),
    directions,
  };
}

/**
 * One entry per configured class. A leaf's drops happen in its queue (the tbf under it), which
 * HTB's class counters leave out: they are added here.
 */
function classStats(policy: DirectionPolicyJson, ids: Readonly<Record<string, number>>, classes: readonly ClassInfo[], qdiscs: readonly QdiscInfo[]): ClassStats[] {
  return policy.classes.map((configured) => {
    const id = classId(ids[configured.name] ?? ROOT_CLASS_MINOR);
    const counters = classes.find((c) => c.id === id)?.counters ?? ZERO;
    const queueDrops = qdiscs.find((q) => q.parent === id)?.counters.drops ?? 0;
    return { name: configured.name, classId: id, rate: configured.rate, ceil: configured.ceil, ...counters, drops: counters.drops + queueDrops };
  });
}
