/**
 * Policy + interface facts -> the desired tc state of one attachment. Pure: no process, no I/O.
 *
 * Egress: HTB at the root of the pod interface. Ingress: the same kind of tree on an ifb inside the
 * pod netns, fed by an `ingress` qdisc whose u32 match-all filter redirects every packet to it.
 * Class ids: the total is :1, and every configured class hangs under it with the minor the
 * attachment's class ids give it (:10, :11, ... at first, kept across edits); an unshaped class
 * sits beside :1. Unmatched traffic reaches the default class through a catch-all filter.
 */
import type { Direction, DirectionPolicy, Policy } from '../config/policy.ts';
import { CATCH_ALL_PREF, ifbName, ROOT_CLASS_MINOR } from '../tc/handles.ts';
import type { U32Key } from '../tc/types.ts';
import { assignAttachmentClassIds, type AttachmentClassIds, type ClassIdMap } from './class-ids.ts';
import { defaultBurstBytes, leafQueueBytes, quantumBytes, toBytesPerSecond } from './sizing.ts';
import { addressKeys, MATCH_ALL, portKey, protocolKey, type PeerSide } from './u32.ts';

/** Filter preferences: rule r uses FIRST_RULE_PREF + 2r for IPv4 and +1 for IPv6. */
const FIRST_RULE_PREF = 10;
export const IFB_TXQUEUELEN = 1000;
export const IFB_MTU = 65535;

export interface HtbClassSpec {
  readonly name: string;
  readonly minor: number;
  /** undefined: attached to the qdisc itself */
  readonly parentMinor: number | undefined;
  readonly rateBytes: number;
  readonly ceilBytes: number;
  readonly burstBytes: number;
  readonly cburstBytes: number;
  readonly quantumBytes: number;
  readonly prio: number;
}

/** The queue under a leaf class: a tbf at the class's ceil, limited in bytes. */
export interface LeafQueueSpec {
  readonly classMinor: number;
  readonly rateBytes: number;
  readonly burstBytes: number;
  readonly limitBytes: number;
}

export interface U32FilterSpec {
  readonly pref: number;
  readonly protocol: 'ip' | 'ipv6' | 'all';
  readonly flowidMinor: number;
  readonly keys: readonly U32Key[];
}

export interface ShapingTree {
  readonly direction: Direction;
  /** Device the HTB qdisc sits on: the pod interface (egress) or the ifb (ingress). */
  readonly dev: string;
  readonly defaultMinor: number;
  readonly classes: readonly HtbClassSpec[];
  readonly leaves: readonly LeafQueueSpec[];
  readonly filters: readonly U32FilterSpec[];
}

/**
 * Where an attachment's trees sit. Both sites are an interface with a tree at its root and an ifb
 * fed from its ingress; what differs is which direction each carries:
 * - `pod`: the pod interface, inside the pod netns: its root shapes what the pod sends (egress),
 *   its ifb what it receives (ingress);
 * - `host`: the host end of a veth pod, in the node's netns, where the pod cannot reach: its root
 *   shapes what the pod receives (ingress), its ifb what the pod sends (egress).
 */
export type Site = 'pod' | 'host' | 'uplink';

/** The direction a site's interface root carries; the other one sits on its ifb. */
export function directionAtRoot(site: Site): Direction {
  return site === 'host' ? 'ingress' : 'egress';
}

export interface AttachmentPlan {
  readonly site: Site;
  /** The interface the site shapes: the pod interface, or the host end of the pod's veth. */
  readonly ifname: string;
  /** The ifb this site owns (always named, so DEL and CHECK can find it). */
  readonly ifb: string;
  readonly egress: ShapingTree | undefined;
  readonly ingress: ShapingTree | undefined;
  /** The class ids the trees use, for the registry. */
  readonly classIds: AttachmentClassIds;
}

/** The tree at the interface's root, and the one on the ifb fed from its ingress. */
export function rootTree(plan: AttachmentPlan): ShapingTree | undefined {
  return plan[directionAtRoot(plan.site)];
}

export function ifbTree(plan: AttachmentPlan): ShapingTree | undefined {
  return plan[directionAtRoot(plan.site) === 'egress' ? 'ingress' : 'egress'];
}

/**
 * Plans both directions at `site` on `ifname`; `previous` class ids (from the registry) are kept
 * for classes still there. Classification follows the direction, wherever its tree sits: the
 * remote peer is the destination of egress and the source of ingress.
 */
export function planAttachment(policy: Policy, ifname: string, mtu: number, previous?: AttachmentClassIds, site: Site = 'pod'): AttachmentPlan {
  const ifb = ifbName(ifname);
  const classIds = assignAttachmentClassIds(policy, previous);
  const deviceOf = (direction: Direction) => (direction === directionAtRoot(site) ? ifname : ifb);
  return {
    site,
    ifname,
    ifb,
    egress: policy.egress && planTree(policy.egress, 'egress', deviceOf('egress'), mtu, classIds.egress!),
    ingress: policy.ingress && planTree(policy.ingress, 'ingress', deviceOf('ingress'), mtu, classIds.ingress!),
    classIds,
  };
}

function planTree(policy: DirectionPolicy, direction: Direction, dev: string, mtu: number, ids: ClassIdMap): ShapingTree {
  const single = policy.classes.filter((c) => !c.unshaped).length === 1;
  const classes: HtbClassSpec[] = [htbClass('total', ROOT_CLASS_MINOR, undefined, policy.ceil, policy.ceil, policy.burst, 0, mtu)];
  const minors = new Map<string, number>();
  for (const c of policy.classes) {
    const minor = ids[c.name]!;
    minors.set(c.name, minor);
    // A lone class is the whole direction: its bucket follows the direction's.
    const burst = c.burst ?? (single && !c.unshaped ? policy.burst : undefined);
    classes.push(htbClass(c.name, minor, c.unshaped ? undefined : ROOT_CLASS_MINOR, c.rate, c.ceil, burst, c.priority, mtu));
  }

  const side: PeerSide = direction === 'egress' ? 'dst' : 'src';
  const filters: U32FilterSpec[] = [];
  policy.rules.forEach((rule, index) => {
    const flowidMinor = minors.get(rule.className)!;
    for (const peer of rule.peers) {
      const base = [...addressKeys(peer, side), ...(rule.protocol ? [protocolKey(rule.protocol, peer.family)] : [])];
      const variants = rule.ports.length ? rule.ports.map((port) => [...base, portKey(port, peer.family, side)]) : [base];
      for (const keys of variants) {
        filters.push({
          pref: FIRST_RULE_PREF + 2 * index + (peer.family === 6 ? 1 : 0),
          protocol: peer.family === 4 ? 'ip' : 'ipv6',
          flowidMinor,
          keys,
        });
      }
    }
  });
  const defaultMinor = minors.get(policy.defaultClass)!;
  filters.push({ pref: CATCH_ALL_PREF, protocol: 'all', flowidMinor: defaultMinor, keys: [MATCH_ALL] });
  const parents = new Set(classes.map((c) => c.parentMinor));
  const leaves = classes
    .filter((c) => !parents.has(c.minor) && !policy.classes.find((p) => p.name === c.name)?.unshaped)
    .map((c) => leafQueue(c, mtu));
  return { direction, dev, defaultMinor, classes, leaves, filters };
}

/**
 * The queue under a leaf class. Its own bucket stays small (1 ms + a frame, always below its limit)
 * whatever the class's burst: tbf splits only GSO packets larger than its bucket, and an unsplit
 * packet larger than the queue limit would be dropped.
 */
export function leafQueue(leaf: HtbClassSpec, mtu: number): LeafQueueSpec {
  return {
    classMinor: leaf.minor,
    rateBytes: leaf.ceilBytes,
    burstBytes: defaultBurstBytes(leaf.ceilBytes, mtu),
    limitBytes: leafQueueBytes(leaf.ceilBytes, mtu),
  };
}

export function htbClass(
  name: string,
  minor: number,
  parentMinor: number | undefined,
  rate: number,
  ceil: number,
  burst: number | undefined,
  prio: number,
  mtu: number,
): HtbClassSpec {
  const rateBytes = toBytesPerSecond(rate);
  const ceilBytes = toBytesPerSecond(ceil);
  return {
    name,
    minor,
    parentMinor,
    rateBytes,
    ceilBytes,
    burstBytes: burst ?? defaultBurstBytes(rateBytes, mtu),
    cburstBytes: burst ?? defaultBurstBytes(ceilBytes, mtu),
    quantumBytes: quantumBytes(rateBytes, mtu),
    prio,
  };
}
