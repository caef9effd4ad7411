/** The typed result of configuration: what to shape, in tcqos's own units (bits/s, bytes). */
import type { Cidr } from './cidr.ts';

export type Direction = 'egress' | 'ingress';
export const DIRECTIONS: readonly Direction[] = ['egress', 'ingress'];

export function otherDirection(direction: Direction): Direction {
  return direction === 'egress' ? 'ingress' : 'egress';
}

export type Protocol = 'tcp' | 'udp' | 'sctp' | 'icmp' | 'icmpv6';

/** Name of the class that unshapedSubnets / shapedSubnets send unshaped traffic to. */
export const UNSHAPED_CLASS = 'unshaped';
/** Name of the class that holds unmatched traffic when the config names none. */
export const IMPLICIT_DEFAULT_CLASS = 'default';

export interface ClassPolicy {
  readonly name: string;
  /** Guaranteed rate, bits per second. */
  readonly rate: number;
  /** Rate it may borrow up to, bits per second (>= rate). */
  readonly ceil: number;
  /** Bucket size in bytes; computed by the planner when absent. */
  readonly burst?: number;
  /** HTB priority: 0 is served first when borrowing. */
  readonly priority: number;
  /** Sits beside the shaped total instead of under it (unshapedSubnets / shapedSubnets). */
  readonly unshaped: boolean;
}

/** Traffic whose remote side is in `peers` (and, if given, uses `protocol` and one of `ports`). */
export interface MatchRule {
  readonly className: string;
  readonly peers: readonly Cidr[];
  readonly protocol?: Protocol;
  readonly ports: readonly number[];
}

export interface DirectionPolicy {
  readonly rate: number;
  readonly ceil: number;
  readonly burst?: number;
  /** Every class, the default one included. */
  readonly classes: readonly ClassPolicy[];
  readonly defaultClass: string;
  /** In the order they are tried: the first rule that matches decides the class. */
  readonly rules: readonly MatchRule[];
}

export interface Policy {
  readonly egress?: DirectionPolicy;
  readonly ingress?: DirectionPolicy;
}

/** Only readUplink (settings.ts) makes an Uplink: its rates are checked against each other there. */
declare const checkedUplink: unique symbol;

/**
 * The node's link to the outside, shared by its pods (rates in bit/s). What pods may be guaranteed
 * on it, together, is `capacity - reserve` (admission counts against that); each attachment's
 * guarantee is first lowered to `maxGuaranteePerAttachment`. Invariants (readUplink):
 * 0 < reserve < capacity, 0 < maxGuaranteePerAttachment <= capacity - reserve.
 */
export interface Uplink {
  readonly name: string;
  readonly capacity: number;
  /** Kept for traffic that is no attachment's (the node's own, pods without tcqos). */
  readonly reserve: number;
  /** The most one attachment's guaranteed rate counts for, per direction. */
  readonly maxGuaranteePerAttachment: number;
  /** Whether tcqos builds the uplink's own tree that keeps the guarantees between pods. */
  readonly enforce: boolean;
  readonly [checkedUplink]: true;
}

/** What pods may be guaranteed on an uplink together: its capacity less the reserve (records written before reserves had none). */
export function guaranteeable(uplink: { readonly capacity: number; readonly reserve?: number }): number {
  return uplink.capacity - (uplink.reserve ?? 0);
}

export interface Settings {
  /**
   * Shape veth pods on the host end of their veth, in the node's namespace, where the pod cannot
   * reach (default); false keeps the trees inside the pod netns, as for macvlan.
   */
  readonly hostSide: boolean;
  readonly logFile?: string;
  readonly logLevel: string;
  readonly stateDir?: string;
  readonly uplink?: Uplink;
  /** kubelet's --cgroup-root ("/" when unset): where pods' cgroup v2 directories are found. */
  readonly cgroupRoot?: string;
}

/**
 * Which input decided a direction's values in force ('operator': set live by `tcqos update`;
 * 'policy': a BandwidthPolicy selecting the pod, named in the record's `bandwidthPolicy`).
 */
export type PolicySource = 'config' | 'runtime' | 'annotation' | 'policy' | 'operator';

/** One direction of a BandwidthPolicy, as resolved for an attachment (src/policy): which policy, and its tree as written. */
export interface PolicyDirectionInput {
  /** "namespace/name" of the BandwidthPolicy. */
  readonly name: string;
  /** Its spec.egress or spec.ingress, raw (the conflist's direction schema). */
  readonly tree: Readonly<Record<string, unknown>>;
}

/** The BandwidthPolicy trees that apply to an attachment, per direction (each may come from another policy). */
export type BandwidthPolicyInput = Readonly<Partial<Record<Direction, PolicyDirectionInput>>>;

/**
 * What decides a pod's policy, raw: the admin's conflist entry (the caps), the runtime's
 * bandwidth values (runtimeConfig.bandwidth at ADD; built from the kubernetes.io/*-bandwidth
 * annotations by the agent), and the pod's annotations (tcqos.io/policy, tcqos.io/policy.<network>).
 */
export interface PolicyInputs {
  /** The conflist's tcqos entry. Its runtimeConfig is read only for what `runtime` / `annotations` leave out. */
  readonly config: Record<string, unknown>;
  /** runtimeConfig.bandwidth, raw (Go-cased keys as containerd sends them are fine). */
  readonly runtime?: Record<string, unknown>;
  /** The pod's annotations, all of them: only tcqos.io/policy and tcqos.io/policy.<network name> are read. */
  readonly annotations?: Readonly<Record<string, string>>;
  /** The BandwidthPolicies that select the pod, resolved for this network: in force where no annotation is. */
  readonly policy?: BandwidthPolicyInput;
}

export interface DerivedPolicy {
  /** The admin's static policy alone. */
  readonly caps: Policy;
  /** In force: the caps, replaced by the annotation's (or else a BandwidthPolicy's) tree fitted under them, tightened by the runtime's values. */
  readonly policy: Policy;
  /** Which input decided each direction of `policy`. */
  readonly sources: { readonly egress?: PolicySource; readonly ingress?: PolicySource };
  readonly settings: Settings;
  /** Only what a user can fix (renamed keys, ignored values). */
  readonly warnings: readonly string[];
  /** Expected adjustments, worth an info line (runtime bursts clamped, values fitted under the cap). */
  readonly notices: readonly string[];
}

/** A Policy as plain JSON (a registry record, an operator's output): CIDRs as their canonical text. */
export interface MatchRuleJson {
  readonly className: string;
  readonly peers: readonly string[];
  readonly protocol?: Protocol;
  readonly ports: readonly number[];
}

export interface DirectionPolicyJson extends Omit<DirectionPolicy, 'rules'> {
  readonly rules: readonly MatchRuleJson[];
}

export interface PolicyJson {
  readonly egress?: DirectionPolicyJson;
  readonly ingress?: DirectionPolicyJson;
}

export function isEmptyPolicy(policy: Policy): boolean {
  return !policy.egress && !policy.ingress;
}
