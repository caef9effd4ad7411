/**
 * unshapedSubnets / shapedSubnets (the reference plugin's v1.5 keys): traffic exempt from shaping,
 * as an ordinary class beside the shaped total (so CHECK and stats see it).
 */
import { parseCidrList, type Cidr } from './cidr.ts';
import { ConfigError } from './errors.ts';
import { UNSHAPED_CLASS, type ClassPolicy, type DirectionPolicy } from './policy.ts';
import type { RawBandwidth } from './raw.ts';
import { LIMITS } from './units.ts';

export interface SubnetRules {
  readonly unshaped: readonly Cidr[];
  readonly shaped: readonly Cidr[];
}

/** The subnets of one source (the conflist, or the runtime's bandwidth); `prefix` is where it sits. */
export function subnetRules(source: RawBandwidth | undefined, prefix: string): SubnetRules | undefined {
  if (!source) return undefined;
  const unshaped = parseCidrList(`${prefix}unshapedSubnets`, source.unshapedSubnets ?? []);
  const shaped = parseCidrList(`${prefix}shapedSubnets`, source.shapedSubnets ?? []);
  if (unshaped.length && shaped.length) {
    throw new ConfigError(`${prefix}shapedSubnets`, 'unshapedSubnets and shapedSubnets cannot both be set: keep one');
  }
  return unshaped.length || shaped.length ? { unshaped, shaped } : undefined;
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
