/**
 * unshapedSubnets / shapedSubnets (the reference plugin's v1.5 keys): traffic exempt from shaping,
 * as an ordinary class beside the shaped total (so CHECK and stats see it).
 */
import { parseCidrList, type Cidr } from './cidr.ts';
import { ConfigError } from './errors.ts';
import { mergePeers } from './peers.ts';
import { UNSHAPED_CLASS, type ClassPolicy, type DirectionPolicy } from './policy.ts';
import type { RawBandwidth } from './raw.ts';
import { LIMITS } from './units.ts';

export interface SubnetRules {
  readonly unshaped: readonly Cidr[];
  readonly shaped: readonly Cidr[];
  /** Where they were set, e.g. "unshapedSubnets" or "runtimeConfig.bandwidth.shapedSubnets". */
  readonly field: string;
}

/** The subnets of one source (the conflist, or the runtime's bandwidth), merged; `prefix` is where it sits. */
export function subnetRules(source: RawBandwidth | undefined, prefix: string): SubnetRules | undefined {
  if (!source) return undefined;
  const unshaped = mergePeers(parseCidrList(`${prefix}unshapedSubnets`, source.unshapedSubnets ?? []));
  const shaped = mergePeers(parseCidrList(`${prefix}shapedSubnets`, source.shapedSubnets ?? []));
  if (unshaped.length && shaped.length) {
    throw new ConfigError(`${prefix}shapedSubnets`, 'unshapedSubnets and shapedSubnets cannot both be set: keep one');
  }
  if (!unshaped.length && !shaped.length) return undefined;
  return { unshaped, shaped, field: `${prefix}${unshaped.length ? 'unshapedSubnets' : 'shapedSubnets'}` };
}

/**
 * A warning when the subnets name one address family only: the other one is then all unshaped
 * (shapedSubnets: ["0.0.0.0/0"] leaves every IPv6 packet unshaped) or all shaped, whatever the
 * subnets were meant to say about it.
 */
export function oneFamilyWarning(subnets: SubnetRules): string | undefined {
  const listed = subnets.unshaped.length ? subnets.unshaped : subnets.shaped;
  const families = new Set(listed.map((cidr) => cidr.family));
  if (families.size !== 1) return undefined;
  const [named, other] = families.has(4) ? ['IPv4', 'IPv6'] : ['IPv6', 'IPv4'];
  const fate = subnets.unshaped.length ? 'stays shaped' : 'is left unshaped';
  return `${subnets.field} lists ${named} subnets only: all ${other} traffic ${fate} (list ${other} subnets too, "${other === 'IPv6' ? '::/0' : '0.0.0.0/0'}" for all of it)`;
}

/**
 * unshapedSubnets are matched before every other rule; with shapedSubnets, traffic outside them
 * is the unshaped class's and traffic inside them falls to the old default.
 */
export function withSubnets(policy: DirectionPolicy, subnets: SubnetRules): DirectionPolicy {
  const bypass: ClassPolicy = {
    name: UNSHAPED_CLASS,
    rate: LIMITS.maxRateBitsPerSecond,
    ceil: LIMITS.maxRateBitsPerSecond,
    priority: 0,
    unshaped: true,
  };
  const classes = [...policy.classes, bypass];
  if (subnets.unshaped.length) {
    return { ...policy, classes, rules: [{ className: UNSHAPED_CLASS, peers: subnets.unshaped, ports: [] }, ...policy.rules] };
  }
  return {
    ...policy,
    classes,
    defaultClass: UNSHAPED_CLASS,
    rules: [...policy.rules, { className: policy.defaultClass, peers: subnets.shaped, ports: [] }],
  };
}
