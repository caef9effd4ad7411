/**
 * Per attachment, direction and class: what is configured and what the kernel counted. Reads only
 * (no lock), one tc process per attachment (src/netns/counters.ts): the counters of a class being
 * changed are read before or after, never torn.
 *
 * Where each figure comes from. A direction is an HTB qdisc (on the site's interface or its ifb);
 * each configured class is an HTB leaf class with a tbf queue under it, at the class's ceil.
 * - class bytes, packets: the HTB class (frames it sent, on the wire, Ethernet header included).
 * - class backlog: the HTB class (what its leaf queue holds).
 * - class drops: the leaf queue (tbf). The tbf splits a GSO packet into frames and refuses them one
 *   by one when its queue is full, so it counts frames, like packets. HTB's own class figure counts
 *   a packet only when its leaf refused all of it (measured: 1030 there, 4853 frames in the tbf): it
 *   is the same loss counted coarser, so adding the two counted drops twice.
 * - class overlimits: the leaf queue's (a frame held back for want of tokens: the class at its ceil)
 *   plus the HTB class's own (its ceil bucket ran dry); distinct events, each counted once.
 * - direction bytes, packets, backlog: the HTB qdisc.
 * - direction drops: its classes' drops as above, plus what the HTB qdisc dropped before any class
 *   (its drops less those of its classes: a packet aimed at its direct queue, which tcqos keeps at 0).
 * - direction overlimits: the HTB qdisc's (every HTB class's, the total's included) plus its leaf
 *   queues'.
 * Each adds what the queues and classes an update replaced had counted (src/attachment/carry.ts), so
 * no figure goes down while the attachment lives.
 */
import { DIRECTIONS, type Direction, type DirectionPolicyJson } from '../config/policy.ts';
import { readCounters, type DeviceCounters } from '../netns/counters.ts';
import { deviceOf, withCarried, type CarriedDirection } from './carry.ts';
import { NetnsSession, withSession, type SessionOptions } from '../netns/session.ts';
import type { AttachmentRecord, PodIdentity, UplinkShare } from '../state/record.ts';
import { pathExists, type Registry } from '../state/registry.ts';
import { classId, ifbName, QDISC_HANDLE, ROOT_CLASS_MINOR } from '../tc/handles.ts';
import { enforcedUplinkOf, type UplinkTarget } from './uplink.ts';
import type { TcCounters } from '../tc/types.ts';

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

/** The attachment's class on its enforced uplink's tree, one direction: rate = its guarantee there. */
export interface UplinkClassStats extends TcCounters {
  readonly direction: Direction;
  readonly classId: string;
  readonly rate: number;
  readonly ceil: number;
}

export interface AttachmentStats {
  readonly containerId: string;
  readonly ifname: string;
  readonly netns: string;
  readonly network: string;
  readonly pod?: PodIdentity;
  /** The uplink the attachment's guarantees are admitted on, if the configuration names one. */
  readonly uplink?: UplinkShare;
  readonly directions: readonly DirectionStats[];
  /** Its classes on the enforced uplink's tree (where it contends with the other pods), per direction. */
  readonly onUplink?: readonly UplinkClassStats[];
}

export interface StatsFilter {
  readonly containerId?: string;
  readonly ifname?: string;
}

/** An attachment whose counters could not be read, and why. */
export interface UnreadableStats {
  readonly containerId: string;
  readonly ifname: string;
  readonly reason: string;
}

export interface StatsReading {
  readonly stats: AttachmentStats[];
  /** Registered, its netns still there, and still no counters: for a metric and a log line, never silence. */
  readonly unreadable: UnreadableStats[];
}

const ZERO: TcCounters = { bytes: 0, packets: 0, drops: 0, overlimits: 0, backlogBytes: 0 };

/** The stats of every registered attachment matching `filter` whose netns exists; unreadable ones are left out. */
export async function collectStats(registry: Registry, filter: StatsFilter = {}, tools: SessionOptions = {}): Promise<AttachmentStats[]> {
  return (await readStats(registry, filter, tools)).stats;
}

/** Attachments read at once: enough to keep an asynchronous runner busy, few open namespace files. */
const READS_AT_ONCE = 8;

/**
 * The stats, and the attachments that could not be read. Attachments shaped in their pod are read
 * one tc process each, a few at once (an asynchronous runner, the agent's, runs them side by side;
 * the synchronous one one after the other); those shaped on host ends are all in the node's
 * namespace, so they are read together in one process (each tc process there dumps every link of
 * the node before it starts).
 */
export async function readStats(registry: Registry, filter: StatsFilter = {}, tools: SessionOptions = {}): Promise<StatsReading> {
  const records = registry
    .list()
    .records.filter((record) => (filter.containerId === undefined || record.containerId === filter.containerId) && (filter.ifname === undefined || record.ifname === filter.ifname))
    .filter((record) => pathExists(record.netns));
  const stats = new Map<AttachmentRecord, AttachmentStats>();
  const unreadable: UnreadableStats[] = [];
  const failed = (record: AttachmentRecord, error: unknown) => {
    // The pod went away between the listing and the read: it has no counters any more.
    if (pathExists(record.netns)) unreadable.push({ containerId: record.containerId, ifname: record.ifname, reason: error instanceof Error ? error.message : String(error) });
  };
  const inPods = records.filter((record) => !record.host);
  let next = 0;
  const worker = async () => {
    for (let at = next++; at < inPods.length; at = next++) {
      const record = inPods[at]!;
      try {
        const counters = await withSession(NetnsSession.open(record.netns, tools), (session) => readCounters(session, devicesOf(record)));
        stats.set(record, attachmentStats(record, counters));
      } catch (error) {
        failed(record, error);
      }
    }
  };
  const onHostEnds = async () => {
    const hosted = records.filter((record) => record.host);
    if (!hosted.length) return;
    try {
      // every host end was installed in this node's namespace: the first record's identity checks it
      const counters = await withSession(NetnsSession.node(tools, hosted[0]!.host!.netns), (node) => readCounters(node, hosted.flatMap(devicesOf)));
      for (const record of hosted) stats.set(record, attachmentStats(record, counters));
    } catch (error) {
      for (const record of hosted) failed(record, error);
    }
  };
  await Promise.all([onHostEnds(), ...Array.from({ length: Math.min(READS_AT_ONCE, inPods.length) }, worker)]);
  const read = records.flatMap((record) => stats.get(record) ?? []);
  return { stats: await withUplinkClasses(read, records, tools, unreadable), unreadable };
}

/**
 * Each attachment's classes on its enforced uplink, from one tc process per uplink (its root and
 * its ifb): the uplink's figures are read once, whatever the number of its attachments.
 */
async function withUplinkClasses(stats: AttachmentStats[], records: readonly AttachmentRecord[], tools: SessionOptions, unreadable: UnreadableStats[]): Promise<AttachmentStats[]> {
  const byAttachment = new Map(records.map((record) => [`${record.containerId}/${record.ifname}`, record]));
  const uplinks = new Map<string, UplinkTarget>();
  for (const record of records) {
    const target = enforcedUplinkOf(record);
    if (target) uplinks.set(target.name, target);
  }
  const counters = new Map<string, Map<string, DeviceCounters>>();
  for (const target of uplinks.values()) {
    try {
      counters.set(target.name, await withSession(NetnsSession.node(tools, target.node), (node) => readCounters(node, [target.name, ifbName(target.name)])));
    } catch (error) {
      unreadable.push({ containerId: '', ifname: target.name, reason: `uplink ${target.name}: ${error instanceof Error ? error.message : String(error)}` });
    }
  }
  return stats.map((attachment) => {
    const record = byAttachment.get(`${attachment.containerId}/${attachment.ifname}`)!;
    const target = enforcedUplinkOf(record);
    const devices = target && counters.get(target.name);
    if (!target || !devices) return attachment;
    const id = classId(record.uplinkClass!.minor);
    const onUplink = DIRECTIONS.flatMap((direction): UplinkClassStats[] => {
      const policy = record.policy[direction];
      const device = devices.get(direction === 'egress' ? target.name : ifbName(target.name));
      if (!policy || !device?.classes.some((c) => c.id === id)) return [];
      return [{ direction, classId: id, rate: policy.rate, ceil: Math.min(policy.ceil, target.capacity), ...leafFigures(device, id) }];
    });
    return { ...attachment, onUplink };
  });
}

/** The devices an attachment's shaped directions sit on, at its site. */
function devicesOf(record: AttachmentRecord): string[] {
  const devices = deviceOf(record.host ? 'host' : 'pod', record.host?.interface ?? record.ifname);
  return DIRECTIONS.filter((direction) => record.policy[direction]).map(devices);
}

function attachmentStats(record: AttachmentRecord, counters: ReadonlyMap<string, DeviceCounters>): AttachmentStats {
  const devices = deviceOf(record.host ? 'host' : 'pod', record.host?.interface ?? record.ifname);
  const directions: DirectionStats[] = [];
  for (const direction of DIRECTIONS.filter((shaped) => record.policy[shaped])) {
    const device = counters.get(devices(direction));
    const stats = device && directionStats(direction, record.policy[direction]!, record.classIds[direction] ?? {}, device, record.counters?.[direction]);
    if (stats) directions.push(stats);
  }
  return {
    containerId: record.containerId,
    ifname: record.ifname,
    netns: record.netns,
    network: record.network,
    ...(record.pod ? { pod: record.pod } : {}),
    ...(record.uplink ? { uplink: record.uplink } : {}),
    directions,
  };
}

const add = (a: TcCounters, b: TcCounters): TcCounters => ({
  bytes: a.bytes + b.bytes,
  packets: a.packets + b.packets,
  drops: a.drops + b.drops,
  overlimits: a.overlimits + b.overlimits,
  backlogBytes: a.backlogBytes + b.backlogBytes,
});

/** A leaf class's figures: HTB's bytes, packets and backlog; its queue's drops; both overlimits. */
function leafFigures(device: DeviceCounters, id: string): TcCounters {
  const htb = device.classes.find((c) => c.id === id)?.counters ?? ZERO;
  const queue = device.qdiscs.find((q) => q.parent === id)?.counters ?? ZERO;
  return { bytes: htb.bytes, packets: htb.packets, backlogBytes: htb.backlogBytes, drops: queue.drops, overlimits: htb.overlimits + queue.overlimits };
}

/**
 * One direction's figures from its device's qdiscs and classes (see the top of this file), with what
 * replaced queues and classes had counted (`carried`); undefined when tcqos's HTB is not at the
 * device's root (being installed or removed right now).
 */
export function directionStats(
  direction: Direction,
  policy: DirectionPolicyJson,
  ids: Readonly<Record<string, number>>,
  device: DeviceCounters,
  carried?: CarriedDirection,
): DirectionStats | undefined {
  const root = device.qdiscs.find((q) => q.root && q.handle === QDISC_HANDLE);
  if (!root) return undefined;
  const classes = policy.classes.map((configured): ClassStats => {
    const id = classId(ids[configured.name] ?? ROOT_CLASS_MINOR);
    return withCarried({ name: configured.name, classId: id, rate: configured.rate, ceil: configured.ceil, ...leafFigures(device, id) }, carried?.classes[configured.name]);
  });
  // Every leaf queue of the tree, configured or not, so the total holds whatever the kernel counted.
  const leaves = device.qdiscs.filter((q) => q.parent !== undefined).map((q) => q.counters);
  const queued = leaves.reduce(add, ZERO);
  const classDrops = device.classes.reduce((sum, c) => sum + (c.counters?.drops ?? 0), 0);
  return {
    direction,
    device: device.device,
    rate: policy.rate,
    ceil: policy.ceil,
    bytes: root.counters.bytes,
    packets: root.counters.packets,
    backlogBytes: root.counters.backlogBytes,
    drops: queued.drops + Math.max(0, root.counters.drops - classDrops) + (carried?.drops ?? 0),
    overlimits: root.counters.overlimits + queued.overlimits + (carried?.overlimits ?? 0),
    classes,
  };
}
