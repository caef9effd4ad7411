/**
 * Policy + interface facts -> the desired tc state of one attachment. Pure: no process, no I/O.
 *
 * Egress: HTB at the root of the pod interface. Ingress: the same kind of tree on an ifb inside the
 * pod netns, fed by an `ingress` qdisc whose u32 match-all filter redirects every packet to it.
 * Class ids: the root (total) is :1, configured classes :10, :11, ... in order. A direction with a
 * single class is that class alone at :1.
 */
import { createHash } from 'node:crypto';
import type { Direction, DirectionPolicy, Policy } from '../config/policy.ts';
import type { U32Key } from '../netns/observe.ts';
import { defaultBurstBytes, leafQueueBytes, quantumBytes, toBytesPerSecond } from './sizing.ts';
import { addressKeys, portKey, protocolKey, type PeerSide } from './u32.ts';

/** Major handle of every tcqos HTB qdisc ("tc qos"): how tcqos recognises its own trees. */
export const HTB_MAJOR = 0x7c05;
export const ROOT_CLASS_MINOR = 1;
const FIRST_CLASS_MINOR = 0x10;
/** Filter preferences: rule r uses FIRST_RULE_PREF + 2r for IPv4 and +1 for IPv6. */
const FIRST_RULE_PREF = 10;
/** The ingress redirect filter's preference doubles as tcqos's mark on the ingress qdisc. */
export const REDIRECT_PREF = HTB_MAJOR;
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
  readonly protocol: 'ip' | 'ipv6';
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

export interface AttachmentPlan {
  readonly ifname: string;
  /** The ifb this attachment owns (always named, so DEL and CHECK can find it). */
  readonly ifb: string;
  readonly egress: ShapingTree | undefined;
  readonly ingress: ShapingTree | undefined;
}

/** ifb device name for an attachment: "tcq" + 12 hex digits of its interface name (15 chars). */
export function ifbName(ifname: string): string {
  return `tcq${createHash('sha256').update(ifname).digest('hex').slice(0, 12)}`;
}

export function planAttachment(policy: Policy, ifname: string, mtu: number): AttachmentPlan {
  const ifb = ifbName(ifname);
  return {
    ifname,
    ifb,
    egress: policy.egress && planTree(policy.egress, 'egress', ifname, mtu),
    ingress: policy.ingress && planTree(policy.ingress, 'ingress', ifb, mtu),
  };
}

function planTree(policy: DirectionPolicy, direction: Direction, dev: string, mtu: number): ShapingTree {
  const shaped = policy.classes.filter((c) => !c.unshaped);
  const single = shaped.length === 1;
  const classes: HtbClassSpec[] = [];
  const minors = new Map<string, number>();
  if (!single) {
    classes.push(htbClass('total', ROOT_CLASS_MINOR, undefined, policy.ceil, policy.ceil, policy.burst, 0, mtu));
  }
  policy.classes.forEach((c, index) => {
    const minor = single && !c.unshaped ? ROOT_CLASS_MINOR : FIRST_CLASS_MINOR + index;
    const parent = single || c.unshaped ? undefined : ROOT_CLASS_MINOR;
    minors.set(c.name, minor);
    classes.push(htbClass(c.name, minor, parent, c.rate, c.ceil, c.burst ?? (single ? policy.burst : undefined), c.priority, mtu));
  });

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
  const parents = new Set(classes.map((c) => c.parentMinor));
  const leaves = classes
    .filter((c) => !parents.has(c.minor) && !policy.classes.find((p) => p.name === c.name)?.unshaped)
    // The leaf's own bucket stays small (1 ms + a frame, always below its limit) whatever the
    // class's burst: tbf splits only GSO packets larger than its bucket, and an unsplit packet
    // larger than the queue limit would be dropped.
    .map((c) => ({
      classMinor: c.minor,
      rateBytes: c.ceilBytes,
      burstBytes: defaultBurstBytes(c.ceilBytes, mtu),
      limitBytes: leafQueueBytes(c.ceilBytes, mtu),
    }));
  return { direction, dev, defaultMinor: minors.get(policy.defaultClass)!, classes, leaves, filters };
}

function htbClass(
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
