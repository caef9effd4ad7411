/** The typed result of configuration: what to shape, in tcqos's own units (bits/s, bytes). */
import type { Cidr } from './cidr.ts';

export type Direction = 'egress' | 'ingress';
export const DIRECTIONS: readonly Direction[] = ['egress', 'ingress'];

export type Protocol = 'tcp' | 'udp' | 'sctp' | 'icmp' | 'icmpv6';

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

export interface Settings {
  readonly logFile?: string;
  readonly logLevel: string;
}

export function isEmptyPolicy(policy: Policy): boolean {
  return !policy.egress && !policy.ingress;
}
