/**
 * Counters that survive an update. A live update keeps the HTB qdisc and its classes, but it
 * replaces a leaf queue whose bucket shrinks (src/plan/update.ts) and re-creates a class that moves
 * to another parent: the kernel's counts of those objects start again from zero. A Prometheus
 * counter must never go down while its series lives, so what the replaced objects had counted is
 * carried in the attachment's record and added to the kernel's figures (src/attachment/stats.ts).
 *
 * Replacement is seen, not predicted: the counters read with the state the update starts from are
 * compared with those read just after it, and an object whose bytes went down was replaced. The few
 * milliseconds between the first read and the replacement are not carried; the figures still never
 * go down.
 */
import { DIRECTIONS, type Direction } from '../config/policy.ts';
import type { Logger } from '../log.ts';
import { readCounters, type DeviceCounters } from '../netns/counters.ts';
import type { NetnsSession } from '../netns/session.ts';
import { directionAtRoot, type Site } from '../plan/tree.ts';
import type { AttachmentRecord } from '../state/record.ts';
import { classId, ifbName } from '../tc/handles.ts';
import type { TcCounters } from '../tc/types.ts';

/** What one class's replaced objects had counted (the class's figures, as stats defines them). */
export type CarriedClass = Pick<TcCounters, 'bytes' | 'packets' | 'drops' | 'overlimits'>;

export interface CarriedDirection {
  /** Added to the direction's drops and overlimits (classes removed or replaced included). */
  readonly drops: number;
  readonly overlimits: number;
  /** By class name, for the classes still configured. */
  readonly classes: Readonly<Record<string, CarriedClass>>;
}

export type CarriedCounters = Readonly<Partial<Record<Direction, CarriedDirection>>>;

/** A tc line that changes an object in place: `class change`, `qdisc change` (src/plan/update.ts). */
const RETUNE = /^(class|qdisc) change /;

const NONE: CarriedClass = { bytes: 0, packets: 0, drops: 0, overlimits: 0 };

type Shaped = Pick<AttachmentRecord, 'policy' | 'classIds'>;

/** The device a direction's tree sits on at a site. */
export function deviceOf(site: Site, ifname: string): (direction: Direction) => string {
  return (direction) => (direction === directionAtRoot(site) ? ifname : ifbName(ifname));
}

/**
 * Runs `change` (an update of the attachment at `site` from `previous` to `next`, which reports the
 * counters it read before it changed anything) and, when it replaced or removed anything, reads them
 * again after it; resolves to its result and the carry to record with `next`. Reading is best
 * effort: when the read fails the update goes on, and the carry stays what it was.
 */
export async function keepingCounts<T extends { readonly lines: readonly string[]; readonly before: ReadonlyMap<string, DeviceCounters> }>(
  session: NetnsSession,
  target: { readonly site: Site; readonly ifname: string },
  previous: AttachmentRecord,
  next: Shaped,
  log: Logger,
  change: () => Promise<T>,
): Promise<{ readonly result: T; readonly counters: CarriedCounters | undefined }> {
  const devices = deviceOf(target.site, target.ifname);
  const result = await change();
  // Only retuned in place (or nothing ran): every queue kept its counts, there is nothing to carry.
  if (result.lines.every((line) => RETUNE.test(line))) return { result, counters: previous.counters };
  const after = await readCounters(session, DIRECTIONS.map(devices)).catch((error: unknown) => {
    log.warn({ err: error }, 'could not read the counters after an update: those of replaced queues are not carried');
    return undefined;
  });
  if (!after) return { result, counters: previous.counters };
  return { result, counters: carryAcross(previous.counters, previous, next, devices, result.before, after) };
}

/**
 * The carry after an update from `previous` to `next`, given each direction's device counters just
 * before and just after it (`deviceOf` names the device a direction's tree sits on).
 */
export function carryAcross(
  carried: CarriedCounters | undefined,
  previous: Shaped,
  next: Shaped,
  deviceOf: (direction: Direction) => string,
  before: ReadonlyMap<string, DeviceCounters>,
  after: ReadonlyMap<string, DeviceCounters>,
): CarriedCounters | undefined {
  const result: Partial<Record<Direction, CarriedDirection>> = {};
  for (const direction of DIRECTIONS) {
    const policy = next.policy[direction];
    const was = before.get(deviceOf(direction));
    const now = after.get(deviceOf(direction));
    // A direction turned off, or its whole tree re-created, starts again: nothing to add to.
    if (!policy || !previous.policy[direction] || !was || !now || !sameRoot(was, now)) continue;
    const old = carried?.[direction] ?? { drops: 0, overlimits: 0, classes: {} };
    let drops = old.drops;
    let overlimits = old.overlimits;
    const classes: Record<string, CarriedClass> = {};
    for (const name of Object.keys(previous.classIds[direction] ?? {})) {
      const oldId = classId(previous.classIds[direction]![name]!);
      const newMinor = next.classIds[direction]?.[name];
      const kept = policy.classes.some((c) => c.name === name) && newMinor !== undefined;
      const newId = kept ? classId(newMinor) : undefined;
      const lost = lostCounts(was, now, oldId, newId);
      drops += lost.leaf.drops - lost.htbDrops;
      overlimits += lost.leaf.overlimits;
      if (!kept) continue;
      const previously = old.classes[name] ?? NONE;
      const sum: CarriedClass = {
        bytes: previously.bytes + lost.htb.bytes,
        packets: previously.packets + lost.htb.packets,
        drops: previously.drops + lost.leaf.drops,
        overlimits: previously.overlimits + lost.htb.overlimits + lost.leaf.overlimits,
      };
      if (sum.bytes || sum.packets || sum.drops || sum.overlimits) classes[name] = sum;
    }
    if (drops || overlimits || Object.keys(classes).length) result[direction] = { drops, overlimits, classes };
  }
  return Object.keys(result).length ? result : undefined;
}

function sameRoot(was: DeviceCounters, now: DeviceCounters): boolean {
  const root = (device: DeviceCounters) => device.qdiscs.find((q) => q.root);
  const a = root(was);
  const b = root(now);
  return a !== undefined && b !== undefined && a.handle === b.handle && b.counters.bytes >= a.counters.bytes;
}

/**
 * What the class `oldId` had counted that the kernel no longer holds after the update: its HTB
 * class's counts when the class was re-created or removed (`newId` undefined), its leaf queue's when
 * the queue was replaced (or went with its class).
 */
function lostCounts(was: DeviceCounters, now: DeviceCounters, oldId: string, newId: string | undefined): { htb: CarriedClass; leaf: CarriedClass; htbDrops: number } {
  const htbBefore = was.classes.find((c) => c.id === oldId)?.counters;
  const leafBefore = was.qdiscs.find((q) => q.parent === oldId)?.counters;
  const htbAfter = newId === undefined ? undefined : now.classes.find((c) => c.id === newId)?.counters;
  const leafAfter = newId === undefined ? undefined : now.qdiscs.find((q) => q.parent === newId)?.counters;
  const reset = (before: TcCounters | undefined, after: TcCounters | undefined) => before !== undefined && (after === undefined || after.bytes < before.bytes || after.packets < before.packets);
  const htbReset = reset(htbBefore, htbAfter);
  const leafReset = htbReset || reset(leafBefore, leafAfter);
  return {
    htb: htbReset ? { bytes: htbBefore!.bytes, packets: htbBefore!.packets, drops: 0, overlimits: htbBefore!.overlimits } : NONE,
    leaf: leafReset && leafBefore ? { bytes: 0, packets: 0, drops: leafBefore.drops, overlimits: leafBefore.overlimits } : NONE,
    htbDrops: htbReset ? htbBefore!.drops : 0,
  };
}

/** A class's figures with what its replaced objects had counted. */
export function withCarried<T extends CarriedClass>(figures: T, carried: CarriedClass | undefined): T {
  if (!carried) return figures;
  return {
    ...figures,
    bytes: figures.bytes + carried.bytes,
    packets: figures.packets + carried.packets,
    drops: figures.drops + carried.drops,
    overlimits: figures.overlimits + carried.overlimits,
  };
}
