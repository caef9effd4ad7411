/**
 * One direction's class tree (the conflist's or an annotation's `egress` / `ingress`) -> a
 * DirectionPolicy, with the rules that make a tree shapeable: classes fit under the direction,
 * names are unique, the default names a class, unmatched traffic always has a class, peers are
 * merged and the filters they become stay within LIMITS.maxFiltersPerDirection.
 */
import { checkBurstTime } from './bursts.ts';
import { parseCidrList } from './cidr.ts';
import { atField, ConfigError } from './errors.ts';
import { checkFilterCount, mergePeers } from './peers.ts';
import { IMPLICIT_DEFAULT_CLASS, UNSHAPED_CLASS, type ClassPolicy, type Direction, type DirectionPolicy, type MatchRule } from './policy.ts';
import { quote } from './quote.ts';
import type { RawClass, RawDirection } from './raw.ts';
import { formatRate, LIMITS, parseRate, parseSize } from './units.ts';

/**
 * A direction that is one class: a flat limit (the reference plugin's keys, a runtime value, a tree
 * with no classes). Its class may borrow up to the direction's ceil: `{"rate": "50mbit", "ceil":
 * "100mbit"}` is 50 guaranteed and up to 100 when the uplink has room.
 */
export function singleClassDirection(rate: number, burst?: number, ceil = rate): DirectionPolicy {
  const only: ClassPolicy = { name: IMPLICIT_DEFAULT_CLASS, rate, ceil, priority: 0, unshaped: false, ...(burst ? { burst } : {}) };
  return { rate, ceil, classes: [only], defaultClass: only.name, rules: [], ...(burst ? { burst } : {}) };
}

export function directionTree(tree: RawDirection, direction: Direction): DirectionPolicy {
  const rate = atField(`${direction}.rate`, () => parseRate(tree.rate));
  const ceil = tree.ceil === undefined ? rate : atField(`${direction}.ceil`, () => parseRate(tree.ceil!));
  if (ceil < rate) throw new ConfigError(`${direction}.ceil`, `${formatRate(ceil)} is below ${direction}.rate ${formatRate(rate)}`);
  const burst = tree.burst === undefined ? undefined : atField(`${direction}.burst`, () => parseSize(tree.burst!));
  checkBurstTime(`${direction}.burst`, burst, rate);

  const names = new Set<string>();
  const classes: ClassPolicy[] = [];
  const rules: MatchRule[] = [];
  (tree.classes ?? []).forEach((raw, index) => {
    const at = `${direction}.classes[${index}]`;
    if (names.has(raw.name)) throw new ConfigError(`${at}.name`, `"${raw.name}" is already the name of another class`);
    if (raw.name === UNSHAPED_CLASS) throw new ConfigError(`${at}.name`, `"${UNSHAPED_CLASS}" is reserved for unshapedSubnets/shapedSubnets`);
    names.add(raw.name);
    classes.push(shapedClass(raw, at, direction, { rate, ceil }));
    const rule = matchRule(raw, at);
    if (rule) rules.push(rule);
  });

  const guaranteed = classes.reduce((sum, c) => sum + c.rate, 0);
  if (guaranteed > rate) {
    throw new ConfigError(`${direction}.classes`, `class rates add up to ${formatRate(guaranteed)}, above ${direction}.rate ${formatRate(rate)}`);
  }
  if (tree.default !== undefined && !names.has(tree.default)) {
    const none = classes.length ? '' : ': this direction lists no classes';
    throw new ConfigError(`${direction}.default`, `names no class (${quote(tree.default)})${none}`);
  }
  if (classes.length === 0) return singleClassDirection(rate, burst, ceil);
  const defaultClass = tree.default ?? (names.has(IMPLICIT_DEFAULT_CLASS) ? IMPLICIT_DEFAULT_CLASS : undefined);
  if (defaultClass === undefined) classes.push(implicitDefault(rate - guaranteed, direction));
  const policy = { rate, ceil, classes, defaultClass: defaultClass ?? IMPLICIT_DEFAULT_CLASS, rules, ...(burst ? { burst } : {}) };
  checkFilterCount(policy, `${direction}.classes`);
  return policy;
}

/** A class, checked against its direction: a class's ceil defaults to its rate, and neither may pass the direction's ceil. */
function shapedClass(raw: RawClass, at: string, direction: Direction, limits: { rate: number; ceil: number }): ClassPolicy {
  const rate = atField(`${at}.rate`, () => parseRate(raw.rate));
  // Blame the field the user wrote: a rate above the direction is the rate's fault, even though
  // the implied ceil (= rate) is what passes the direction's ceil.
  if (rate > limits.ceil) {
    throw new ConfigError(`${at}.rate`, `${formatRate(rate)} is above ${direction}.ceil ${formatRate(limits.ceil)}, which caps the whole attachment`);
  }
  if (rate > limits.rate) throw new ConfigError(`${at}.rate`, `${formatRate(rate)} is above ${direction}.rate ${formatRate(limits.rate)}`);
  const ceil = raw.ceil === undefined ? rate : atField(`${at}.ceil`, () => parseRate(raw.ceil!));
  if (ceil < rate) throw new ConfigError(`${at}.ceil`, `${formatRate(ceil)} is below the class's rate ${formatRate(rate)}`);
  if (ceil > limits.ceil) {
    throw new ConfigError(`${at}.ceil`, `${formatRate(ceil)} is above ${direction}.ceil ${formatRate(limits.ceil)}, which caps the whole attachment`);
  }
  const burst = raw.burst === undefined ? undefined : atField(`${at}.burst`, () => parseSize(raw.burst!));
  checkBurstTime(`${at}.burst`, burst, rate);
  return { name: raw.name, rate, ceil, priority: raw.priority ?? 0, unshaped: false, ...(burst ? { burst } : {}) };
}

/** The class's filter: its peers, and if given its protocol and ports. */
function matchRule(raw: RawClass, at: string): MatchRule | undefined {
  if (!raw.peers) {
    if (raw.protocol || raw.ports) throw new ConfigError(`${at}.peers`, 'is required when protocol or ports are given');
    return undefined;
  }
  if (raw.ports && !['tcp', 'udp', 'sctp'].includes(raw.protocol!)) {
    throw new ConfigError(`${at}.ports`, `ports need protocol tcp, udp or sctp (not ${raw.protocol})`);
  }
  return {
    className: raw.name,
    peers: mergePeers(parseCidrList(`${at}.peers`, raw.peers)),
    ...(raw.protocol ? { protocol: raw.protocol } : {}),
    ports: raw.ports ?? [],
  };
}

/** Unmatched traffic's class when the tree names none: what the named classes leave of the rate. */
function implicitDefault(left: number, direction: Direction): ClassPolicy {
  if (left < LIMITS.minRateBitsPerSecond) {
    throw new ConfigError(
      `${direction}.default`,
      `the classes take all of ${direction}.rate, so unmatched traffic has nothing left: name one of them as default or lower their rates`,
    );
  }
  return { name: IMPLICIT_DEFAULT_CLASS, rate: left, ceil: left, priority: 0, unshaped: false };
}
