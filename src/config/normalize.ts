/**
 * Raw network configuration -> one typed Policy.
 *
 * Two vocabularies meet here: the reference `bandwidth` plugin's flat keys (static or from the
 * runtime) and tcqos's own per-direction class trees. Both end as a DirectionPolicy per direction.
 * A runtime value (a pod annotation, written by whoever writes the pod) can tighten the
 * administrator's limit but never loosen it.
 */
import { loadCidrSupport, parseCidr, type Cidr } from './cidr.ts';
import { ConfigError } from './errors.ts';
import { canonicalKeys } from './keys.ts';
import type { ClassPolicy, Direction, DirectionPolicy, MatchRule, Policy, Protocol, Settings } from './policy.ts';
import { DIRECTIONS } from './policy.ts';
import { LIMITS, parseRate, parseSize } from './units.ts';
import { validateConfig, type SchemaError } from './validate-config.generated.js';

type Quantity = number | string;

interface RawClass {
  name: string;
  rate: Quantity;
  ceil?: Quantity;
  burst?: Quantity;
  priority?: number;
  peers?: string[];
  protocol?: Protocol;
  ports?: number[];
}

interface RawDirection {
  rate: Quantity;
  ceil?: Quantity;
  burst?: Quantity;
  default?: string;
  classes?: RawClass[];
}

interface RawBandwidth {
  ingressRate?: number;
  ingressBurst?: number;
  egressRate?: number;
  egressBurst?: number;
  unshapedSubnets?: string[];
  shapedSubnets?: string[];
}

interface RawConfig extends RawBandwidth {
  cniVersion: string;
  name?: string;
  egress?: RawDirection;
  ingress?: RawDirection;
  maxBurst?: Quantity;
  logFile?: string;
  logLevel?: string;
  runtimeConfig?: { bandwidth?: RawBandwidth };
}

export interface NormalizedConfig {
  readonly policy: Policy;
  readonly settings: Settings;
  /** Worth a warning: renamed keys, ignored runtime subnets. */
  readonly warnings: readonly string[];
  /** Expected adjustments worth an info line: runtime bursts clamped, looser runtime rates ignored. */
  readonly notices: readonly string[];
}

/** Name of the class that unshapedSubnets / shapedSubnets send unshaped traffic to. */
export const UNSHAPED_CLASS = 'unshaped';
/** Name of the class that holds unmatched traffic when the config names none. */
export const IMPLICIT_DEFAULT_CLASS = 'default';
/** A runtime burst above this many seconds at the rate is clamped (unless maxBurst says otherwise). */
const RUNTIME_BURST_SECONDS = 0.05;

export async function normalizeConfig(input: Record<string, unknown>): Promise<NormalizedConfig> {
  const warnings: string[] = [];
  const notices: string[] = [];
  const raw = canonicalKeys(input, warnings);
  if (!validateConfig(raw)) throw schemaError(validateConfig.errors ?? []);
  const config = raw as unknown as RawConfig;
  if (listsCidrs(config)) await loadCidrSupport();

  const maxBurst = config.maxBurst === undefined ? undefined : field('maxBurst', () => parseSize(config.maxBurst!));
  const staticSubnets = subnetRules(config, '');
  const runtimeSubnets = subnetRules(config.runtimeConfig?.bandwidth, 'runtimeConfig.bandwidth.');
  const policy: { egress?: DirectionPolicy; ingress?: DirectionPolicy } = {};
  for (const direction of DIRECTIONS) {
    const tree = staticDirection(config, direction);
    const runtime = runtimeLimit(config.runtimeConfig?.bandwidth, direction, maxBurst, notices);
    const merged = tighten(tree, runtime, direction, notices);
    if (!merged) continue;
    // Subnets exempt traffic from shaping, so the runtime's may not loosen an administrator's limit.
    const subnets = tree ? staticSubnets : (staticSubnets ?? runtimeSubnets);
    if (tree && runtimeSubnets && !staticSubnets) {
      warnings.push(`runtimeConfig.bandwidth subnets ignored for ${direction}: they would loosen the configured limit`);
    }
    policy[direction] = subnets ? withSubnets(merged, subnets) : merged;
  }
  if (config.logFile && /^\/(proc|sys|dev)(\/|$)/.test(config.logFile)) {
    throw new ConfigError('logFile', 'must not be under /proc, /sys or /dev');
  }
  return {
    policy,
    settings: { logLevel: config.logLevel ?? (config.logFile ? 'info' : 'warn'), ...(config.logFile ? { logFile: config.logFile } : {}) },
    warnings,
    notices,
  };
}

function listsCidrs(config: RawConfig): boolean {
  const runtime = config.runtimeConfig?.bandwidth;
  return [config, runtime].some((source) => source?.unshapedSubnets?.length || source?.shapedSubnets?.length) ||
    DIRECTIONS.some((direction) => config[direction]?.classes?.some((c) => c.peers?.length));
}

function schemaError(errors: readonly SchemaError[]): ConfigError {
  const first = errors[0];
  if (!first) return new ConfigError('', 'invalid configuration');
  const path = first.instancePath
    .split('/')
    .slice(1)
    .map((part) => (/^\d+$/.test(part) ? `[${part}]` : `.${part}`))
    .join('')
    .replace(/^\./, '');
  const params = first.params;
  if (first.keyword === 'additionalProperties') {
    const key = String(params['additionalProperty']);
    return new ConfigError(path ? `${path}.${key}` : key, 'unknown key');
  }
  if (first.keyword === 'required') {
    const key = String(params['missingProperty']);
    return new ConfigError(path ? `${path}.${key}` : key, 'is required');
  }
  if (first.keyword === 'dependencies') {
    return new ConfigError(`${path}.${String(params['property'])}`, `needs "${String(params['missingProperty'])}" beside it`);
  }
  return new ConfigError(path || '(config)', first.message ?? first.keyword);
}

/** Runs a unit or CIDR parser and ties any complaint to the field. */
function field<T>(name: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(name, (error as Error).message);
  }
}

function cidrs(name: string, list: readonly string[]): Cidr[] {
  return list.map((text, index) => field(`${name}[${index}]`, () => parseCidr(text)));
}

/** The administrator's limit for one direction: the class tree, or the reference plugin's flat keys. */
function staticDirection(config: RawConfig, direction: Direction): DirectionPolicy | undefined {
  const tree = config[direction];
  const flat = referenceLimit(config, direction, '');
  if (tree && flat) {
    throw new ConfigError(`${direction}Rate`, `use either "${direction}Rate" or "${direction}", not both`);
  }
  if (tree) return directionTree(tree, direction);
  if (flat) {
    checkBurstTime(`${direction}Burst`, flat.burst, flat.rate);
    return oneClass(flat.rate, flat.burst);
  }
  return undefined;
}

interface FlatLimit {
  readonly rate: number;
  readonly burst: number;
}

/** The reference plugin's `<direction>Rate` / `<direction>Burst` pair, with its rules: both or neither. */
function referenceLimit(source: RawBandwidth, direction: Direction, prefix: string): FlatLimit | undefined {
  const rateKey = `${direction}Rate` as const;
  const burstKey = `${direction}Burst` as const;
  const rate = source[rateKey] ?? 0;
  const burst = source[burstKey] ?? 0;
  if (rate === 0 && burst === 0) return undefined;
  if (burst === 0) throw new ConfigError(`${prefix}${burstKey}`, `must be set when ${rateKey} is (bits)`);
  if (rate === 0) throw new ConfigError(`${prefix}${rateKey}`, `must be set when ${burstKey} is (bits per second)`);
  return {
    rate: field(`${prefix}${rateKey}`, () => parseRate(rate)),
    burst: field(`${prefix}${burstKey}`, () => parseSize(burst)),
  };
}

function oneClass(rate: number, burst?: number): DirectionPolicy {
  const only: ClassPolicy = { name: IMPLICIT_DEFAULT_CLASS, rate, ceil: rate, priority: 0, unshaped: false, ...(burst ? { burst } : {}) };
  return { rate, ceil: rate, classes: [only], defaultClass: only.name, rules: [], ...(burst ? { burst } : {}) };
}

function directionTree(tree: RawDirection, direction: Direction): DirectionPolicy {
  const rate = field(`${direction}.rate`, () => parseRate(tree.rate));
  const ceil = tree.ceil === undefined ? rate : field(`${direction}.ceil`, () => parseRate(tree.ceil!));
  if (ceil < rate) throw new ConfigError(`${direction}.ceil`, 'must not be below rate');
  const burst = tree.burst === undefined ? undefined : field(`${direction}.burst`, () => parseSize(tree.burst!));
  checkBurstTime(`${direction}.burst`, burst, rate);

  const classes: ClassPolicy[] = [];
  const rules: MatchRule[] = [];
  const names = new Set<string>();
  (tree.classes ?? []).forEach((raw, index) => {
    const at = `${direction}.classes[${index}]`;
    if (names.has(raw.name)) throw new ConfigError(`${at}.name`, `"${raw.name}" is already the name of another class`);
    if (raw.name === UNSHAPED_CLASS) throw new ConfigError(`${at}.name`, `"${UNSHAPED_CLASS}" is reserved for unshapedSubnets/shapedSubnets`);
    names.add(raw.name);
    const classRate = field(`${at}.rate`, () => parseRate(raw.rate));
    const classCeil = raw.ceil === undefined ? classRate : field(`${at}.ceil`, () => parseRate(raw.ceil!));
    if (classCeil < classRate) throw new ConfigError(`${at}.ceil`, 'must not be below rate');
    if (classCeil > ceil) throw new ConfigError(`${at}.ceil`, `must not be above ${direction}.ceil (${ceil} bit/s), which caps the whole attachment`);
    const classBurst = raw.burst === undefined ? undefined : field(`${at}.burst`, () => parseSize(raw.burst!));
    checkBurstTime(`${at}.burst`, classBurst, classRate);
    classes.push({
      name: raw.name,
      rate: classRate,
      ceil: classCeil,
      priority: raw.priority ?? 0,
      unshaped: false,
      ...(classBurst ? { burst: classBurst } : {}),
    });
    if (raw.peers) {
      if (raw.ports && !['tcp', 'udp', 'sctp'].includes(raw.protocol!)) {
        throw new ConfigError(`${at}.ports`, `ports need protocol tcp, udp or sctp (not ${raw.protocol})`);
      }
      rules.push({
        className: raw.name,
        peers: cidrs(`${at}.peers`, raw.peers),
        ...(raw.protocol ? { protocol: raw.protocol } : {}),
        ports: raw.ports ?? [],
      });
    } else if (raw.protocol || raw.ports) {
      throw new ConfigError(`${at}.peers`, 'is required when protocol or ports are given');
    }
  });

  const guaranteed = classes.reduce((sum, c) => sum + c.rate, 0);
  if (guaranteed > rate) {
    throw new ConfigError(`${direction}.classes`, `class rates add up to ${guaranteed} bit/s, above ${direction}.rate (${rate} bit/s)`);
  }
  if (classes.length === 0) return { ...oneClass(rate, burst), ceil };

  let defaultClass = tree.default;
  if (defaultClass !== undefined) {
    if (!names.has(defaultClass)) throw new ConfigError(`${direction}.default`, `names no class (${JSON.stringify(defaultClass)})`);
  } else if (names.has(IMPLICIT_DEFAULT_CLASS)) {
    defaultClass = IMPLICIT_DEFAULT_CLASS;
  } else {
    const left = rate - guaranteed;
    if (left < LIMITS.minRateBitsPerSecond) {
      throw new ConfigError(
        `${direction}.default`,
        `the classes take all of ${direction}.rate, so unmatched traffic has nothing left: name one of them as default or lower their rates`,
      );
    }
    classes.push({ name: IMPLICIT_DEFAULT_CLASS, rate: left, ceil: left, priority: 0, unshaped: false });
    defaultClass = IMPLICIT_DEFAULT_CLASS;
  }
  return { rate, ceil, classes, defaultClass, rules, ...(burst ? { burst } : {}) };
}

/** The largest bucket tc can hold at `rate` (bits/s), in bytes. */
function longestBurst(rate: number): number {
  return Math.floor((LIMITS.maxBurstSeconds * rate) / 8);
}

function checkBurstTime(name: string, burst: number | undefined, rate: number): void {
  if (burst !== undefined && (burst * 8) / rate > LIMITS.maxBurstSeconds) {
    throw new ConfigError(name, `is ${Math.round((burst * 8) / rate)} s of traffic at the rate; tc cannot hold more than ${LIMITS.maxBurstSeconds} s`);
  }
}

/** What the runtime (pod annotations via runtimeConfig.bandwidth) asks for one direction, burst clamped. */
function runtimeLimit(
  bandwidth: RawBandwidth | undefined,
  direction: Direction,
  maxBurst: number | undefined,
  notices: string[],
): FlatLimit | undefined {
  if (!bandwidth) return undefined;
  const limit = referenceLimit(bandwidth, direction, 'runtimeConfig.bandwidth.');
  if (!limit) return undefined;
  const ceiling = Math.min(maxBurst ?? Math.max(Math.ceil((limit.rate / 8) * RUNTIME_BURST_SECONDS), 64 * 1024), longestBurst(limit.rate));
  if (limit.burst <= ceiling) return limit;
  notices.push(
    `runtimeConfig.bandwidth.${direction}Burst of ${limit.burst} bytes clamped to ${ceiling} bytes so a new pod cannot burst far past its rate (set maxBurst to change)`,
  );
  return { rate: limit.rate, burst: ceiling };
}

/** The lower of the administrator's and the runtime's limits. */
function tighten(
  tree: DirectionPolicy | undefined,
  runtime: FlatLimit | undefined,
  direction: Direction,
  notices: string[],
): DirectionPolicy | undefined {
  if (!runtime) return tree;
  if (!tree) return oneClass(runtime.rate, runtime.burst);
  if (runtime.rate >= tree.ceil) {
    if (runtime.rate > tree.ceil) notices.push(`runtime ${direction} rate ${runtime.rate} bit/s is above the configured ${tree.ceil} bit/s: the configured limit stays`);
    return tree;
  }
  const ceil = runtime.rate;
  const rate = Math.min(tree.rate, ceil);
  const guaranteed = tree.classes.reduce((sum, c) => sum + c.rate, 0);
  const scale = guaranteed > rate ? rate / guaranteed : 1;
  const burst = Math.min(tree.burst ?? runtime.burst, runtime.burst, longestBurst(ceil));
  const classes = tree.classes.map((c) => {
    const classRate = Math.max(LIMITS.minRateBitsPerSecond, Math.floor(c.rate * scale));
    // A one-class tree's class is the whole direction: its bucket follows the direction's.
    const classBurst = tree.classes.length === 1 ? Math.min(c.burst ?? burst, burst) : c.burst;
    return {
      ...c,
      rate: classRate,
      ceil: Math.min(c.ceil, ceil),
      ...(classBurst === undefined ? {} : { burst: Math.min(classBurst, longestBurst(classRate)) }),
    };
  });
  return { ...tree, rate, ceil, classes, burst };
}

interface SubnetRules {
  readonly unshaped: readonly Cidr[];
  readonly shaped: readonly Cidr[];
}

/** unshapedSubnets / shapedSubnets of one source (the conflist, or the runtime's bandwidth). */
function subnetRules(source: RawBandwidth | undefined, prefix: string): SubnetRules | undefined {
  if (!source) return undefined;
  const unshaped = cidrs(`${prefix}unshapedSubnets`, source.unshapedSubnets ?? []);
  const shaped = cidrs(`${prefix}shapedSubnets`, source.shapedSubnets ?? []);
  if (unshaped.length && shaped.length) {
    throw new ConfigError(`${prefix}shapedSubnets`, 'unshapedSubnets and shapedSubnets cannot both be set: keep one');
  }
  return unshaped.length || shaped.length ? { unshaped, shaped } : undefined;
}

/**
 * Subnets become an ordinary class (so CHECK and stats see it) sitting beside the shaped total:
 * unshapedSubnets are matched before every other rule; with shapedSubnets, traffic outside them
 * is the unshaped class's and traffic inside them falls to the old default.
 */
function withSubnets(policy: DirectionPolicy, subnets: SubnetRules): DirectionPolicy {
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
