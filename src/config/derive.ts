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
 *   annotation tcqos.io/policy.<network>    | replaces tcqos.io/policy for that network | -
 *   annotation tcqos.io/policy              | its tree replaces the cap's tree, fitted  | annotation
 *                                           | under the cap (tighten.ts); with no cap,  |
 *                                           | in force as written                       |
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
import { atField, atSource } from './errors.ts';
import { canonicalKeys } from './keys.ts';
import { annotatedTree, readPolicyAnnotation, type PolicyAnnotation } from './policy-annotations.ts';
import { DIRECTIONS, type DerivedPolicy, type Direction, type DirectionPolicy, type PolicyInputs, type PolicySource } from './policy.ts';
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
  if (listsCidrs(config, runtime, annotation)) await loadCidrSupport();

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
    const requested = annotation && annotatedTree(annotation, direction);
    const limit = runtime && runtimeLimit(runtime, direction, maxBurst, notices);
    const derived = deriveDirection(direction, cap, requested && { key: annotation.key, tree: requested }, limit, notices);
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

/** The precedence chain for one direction: cap, then the annotation's tree under it, then the runtime's limit. */
function deriveDirection(
  direction: Direction,
  cap: DirectionPolicy | undefined,
  requested: { key: string; tree: DirectionPolicy } | undefined,
  runtime: FlatLimit | undefined,
  notices: string[],
): { policy: DirectionPolicy; source: PolicySource } | undefined {
  let current: { policy: DirectionPolicy; source: PolicySource } | undefined = cap && { policy: cap, source: 'config' };
  if (requested) {
    const source = `annotation ${requested.key}`;
    const fitted = cap ? atSource(source, () => fitUnder(requested.tree, cap, `${direction}.classes`)) : { policy: requested.tree, lowered: [] };
    if (fitted.lowered.length) notices.push(`${source}: ${direction} fitted under the configured cap (${fitted.lowered.join(', ')})`);
    current = { policy: fitted.policy, source: 'annotation' };
  }
  if (!runtime) return current;
  if (!current) return { policy: singleClassDirection(runtime.rate, runtime.burst), source: 'runtime' };
  if (runtime.rate > current.policy.ceil) {
    const from = current.source === 'annotation' ? 'annotation' : 'configured limit';
    notices.push(`${RUNTIME_PREFIX}${direction}Rate ${formatRate(runtime.rate)} is above the ${formatRate(current.policy.ceil)} of the ${from}: the lower limit stays`);
  }
  const fitted = fitUnder(current.policy, { rate: runtime.rate, ceil: runtime.rate, burst: runtime.burst }, `${RUNTIME_PREFIX}${direction}Rate`);
  return { policy: fitted.policy, source: fitted.lowered.length ? 'runtime' : current.source };
}

function listsCidrs(config: RawConfig, runtime: RawBandwidth | undefined, annotation: PolicyAnnotation | undefined): boolean {
  return [config, runtime].some((source) => source?.unshapedSubnets?.length || source?.shapedSubnets?.length) ||
    DIRECTIONS.some((direction) => [config, annotation?.document].some((tree) => tree?.[direction]?.classes?.some((c) => c.peers?.length)));
}
