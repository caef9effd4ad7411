/**
 * The entry of src/config: the admin's conflist entry, the runtime's bandwidth values and the pod's
 * annotations -> the policy in force, direction by direction.
 *
 * Precedence, per direction (the lower value always wins):
 *
 *   input                                   | role                                      | source
 *   ----------------------------------------|-------------------------------------------|-----------
 *   conflist entry (egress/ingress tree or  | the cap; in force when nothing else asks  | config
 *     egressRate/egressBurst ...)           |                                           |
 *   BandwidthPolicy selecting the pod (the  | its tree replaces the cap's tree, fitted  | policy
 *     agent resolves which: src/policy)     | under the cap as an annotation's is       |
 *   annotation tcqos.io/policy.<network>    | replaces tcqos.io/policy for that network | -
 *   annotation tcqos.io/policy              | replaces any BandwidthPolicy; its tree    | annotation
 *                                           | replaces the cap's tree, fitted under the |
 *                                           | cap (tighten.ts); with no cap, in force   |
 *                                           | as written                                |
 *   runtimeConfig.bandwidth (containerd's   | tightens the result further (flat limit,  | runtime, when
 *     kubernetes.io/*-bandwidth)            | burst clamped); with nothing else, alone  | it lowered it
 *
 * Subnets (unshapedSubnets/shapedSubnets) come from the conflist; the runtime's are used only for a
 * direction the conflist leaves uncapped, since they exempt traffic from shaping.
 *
 * With an uplink, a direction's guaranteed rate is then lowered to what one attachment may hold
 * there (uplink.maxGuaranteePerAttachment; its ceil stays), so no pod can claim the uplink.
 */
import { capFor } from './caps.ts';
import { loadCidrSupport } from './cidr.ts';
import { policyDirectionTree, policySource } from './bandwidth-policy.ts';
import { atField, atSource } from './errors.ts';
import { canonicalKeys } from './keys.ts';
import { annotatedTree, readPolicyAnnotation, type PolicyAnnotation } from './policy-annotations.ts';
import { DIRECTIONS, type BandwidthPolicyInput, type DerivedPolicy, type Direction, type DirectionPolicy, type PolicyInputs, type PolicySource } from './policy.ts';
import type { RawBandwidth, RawConfig } from './raw.ts';
import type { FlatLimit } from './reference-limits.ts';
import { readRuntime, runtimeLimit, RUNTIME_PREFIX } from './runtime.ts';
import { configSchema, POD_ANNOTATIONS_KEY } from './schema.ts';
import { schemaError } from './schema-errors.ts';
import { readSettings } from './settings.ts';
import { checkFilterCount } from './peers.ts';
import { oneFamilyWarning, subnetRules, withSubnets } from './subnets.ts';
import { capGuarantee, fitUnder } from './tighten.ts';
import { singleClassDirection } from './tree.ts';
import { formatRate, parseSize } from './units.ts';
import { validateConfig } from './validate-config.generated.js';

/** Throws ConfigError naming the input and the field. */
export async function derivePolicy(inputs: PolicyInputs): Promise<DerivedPolicy> {
  const warnings: string[] = [];
  const notices: string[] = [];
  const config = readConfig(inputs.config, warnings);
  // At ADD both arrive inside the configuration's runtimeConfig; the agent passes them apart.
  const rawRuntime = inputs.runtime ?? config.runtimeConfig?.bandwidth;
  const runtime = rawRuntime === undefined ? undefined : readRuntime(rawRuntime as Record<string, unknown>);
  const annotations = inputs.annotations ?? config.runtimeConfig?.[POD_ANNOTATIONS_KEY];
  const annotation = annotations === undefined ? undefined : readPolicyAnnotation(annotations, config.name);
  // the pod's own annotation replaces any BandwidthPolicy that selects it
  const fromPolicy = annotation ? undefined : inputs.policy;
  if (listsCidrs(config, runtime, annotation, fromPolicy)) await loadCidrSupport();

  const settings = readSettings(config);
  const maxBurst = config.maxBurst === undefined ? undefined : atField('maxBurst', () => parseSize(config.maxBurst!));
  const staticSubnets = subnetRules(config, '');
  const runtimeSubnets = subnetRules(runtime, RUNTIME_PREFIX);
  const caps: { -readonly [D in Direction]?: DirectionPolicy } = {};
  const policy: { -readonly [D in Direction]?: DirectionPolicy } = {};
  const sources: { -readonly [D in Direction]?: PolicySource } = {};
  const subnetWarnings = new Set<string>();
  for (const direction of DIRECTIONS) {
    const cap = capFor(config, direction);
    const limit = runtime && runtimeLimit(runtime, direction, maxBurst, notices);
    const derived = deriveDirection(direction, cap, requestedTree(annotation, fromPolicy, direction), limit, notices);
    if (cap) caps[direction] = staticSubnets ? withSubnets(cap, staticSubnets) : cap;
    if (!derived) continue;
    // Subnets exempt traffic from shaping, so the runtime's may not loosen an administrator's limit.
    const subnets = cap ? staticSubnets : (staticSubnets ?? runtimeSubnets);
    if (cap && runtimeSubnets && !staticSubnets) {
      warnings.push(`${RUNTIME_PREFIX.slice(0, -1)} subnets ignored for ${direction}: they would loosen the configured limit`);
    }
    const guaranteed = settings.uplink ? capGuarantee(derived.policy, settings.uplink.maxGuaranteePerAttachment, 'uplink.maxGuaranteePerAttachment') : undefined;
    if (guaranteed?.lowered.length) notices.push(`${direction}: guaranteed ${guaranteed.lowered.join(', ')}: the most one attachment may hold on uplink ${settings.uplink!.name}`);
    const shaped = guaranteed?.policy ?? derived.policy;
    if (subnets) {
      const warning = oneFamilyWarning(subnets);
      if (warning) subnetWarnings.add(warning);
      policy[direction] = withSubnets(shaped, subnets);
      checkFilterCount(policy[direction]!, subnets.field, `${direction}'s peers x ports with these subnets`);
    } else {
      policy[direction] = shaped;
    }
    sources[direction] = derived.source;
  }
  return { caps, policy, sources, settings, warnings: [...warnings, ...subnetWarnings], notices };
}

function readConfig(input: Record<string, unknown>, warnings: string[]): RawConfig {
  const raw = canonicalKeys(input, warnings);
  if (!validateConfig(raw)) throw schemaError(validateConfig.errors, configSchema, { root: '(config)' });
  return raw as unknown as RawConfig;
}

/** A tree the pod asks for in place of the cap's: its annotation's, or else a BandwidthPolicy's. */
interface RequestedTree {
  /** Where it came from, as messages say it: "annotation tcqos.io/policy", "BandwidthPolicy shop/web". */
  readonly from: string;
  readonly source: PolicySource;
  readonly tree: DirectionPolicy;
}

function requestedTree(annotation: PolicyAnnotation | undefined, policy: BandwidthPolicyInput | undefined, direction: Direction): RequestedTree | undefined {
  if (annotation) {
    const tree = annotatedTree(annotation, direction);
    return tree && { from: `annotation ${annotation.key}`, source: 'annotation', tree };
  }
  const input = policy?.[direction];
  return input && { from: policySource(input.name), source: 'policy', tree: policyDirectionTree(input, direction) };
}

/** The precedence chain for one direction: cap, then the annotation's (or a policy's) tree under it, then the runtime's limit. */
function deriveDirection(
  direction: Direction,
  cap: DirectionPolicy | undefined,
  requested: RequestedTree | undefined,
  runtime: FlatLimit | undefined,
  notices: string[],
): { policy: DirectionPolicy; source: PolicySource } | undefined {
  let current: { policy: DirectionPolicy; source: PolicySource } | undefined = cap && { policy: cap, source: 'config' };
  if (requested) {
    const fitted = cap ? atSource(requested.from, () => fitUnder(requested.tree, cap, `${direction}.classes`)) : { policy: requested.tree, lowered: [] };
    if (fitted.lowered.length) notices.push(`${requested.from}: ${direction} fitted under the configured cap (${fitted.lowered.join(', ')})`);
    current = { policy: fitted.policy, source: requested.source };
  }
  if (!runtime) return current;
  if (!current) return { policy: singleClassDirection(runtime.rate, runtime.burst), source: 'runtime' };
  if (runtime.rate > current.policy.ceil) {
    const from = current.source === 'config' || current.source === 'operator' ? 'configured limit' : current.source === 'policy' ? 'BandwidthPolicy' : 'annotation';
    notices.push(`${RUNTIME_PREFIX}${direction}Rate ${formatRate(runtime.rate)} is above the ${formatRate(current.policy.ceil)} of the ${from}: the lower limit stays`);
  }
  const fitted = fitUnder(current.policy, { rate: runtime.rate, ceil: runtime.rate, burst: runtime.burst }, `${RUNTIME_PREFIX}${direction}Rate`);
  return { policy: fitted.policy, source: fitted.lowered.length ? 'runtime' : current.source };
}

function listsCidrs(config: RawConfig, runtime: RawBandwidth | undefined, annotation: PolicyAnnotation | undefined, policy: BandwidthPolicyInput | undefined): boolean {
  const hasPeers = (tree: unknown) => Array.isArray((tree as { classes?: unknown } | undefined)?.classes) && ((tree as { classes: unknown[] }).classes).some((c) => Array.isArray((c as { peers?: unknown } | null)?.peers));
  return [config, runtime].some((source) => source?.unshapedSubnets?.length || source?.shapedSubnets?.length) ||
    DIRECTIONS.some((direction) => [config[direction], annotation?.document[direction], policy?.[direction]?.tree].some(hasPeers));
}
