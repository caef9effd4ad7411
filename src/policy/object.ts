/**
 * The BandwidthPolicy resource (tcqos.io/v1alpha1, namespaced): its names, what the agent keeps of
 * an object (never its status, which the node agents write: a status write must not look like an
 * edit), and the check of its spec. The spec is checked here in full, by the rules ADD applies to
 * the same trees (src/config/bandwidth-policy.ts), so an invalid policy is refused once, when it
 * arrives, naming the field: what the CRD's schema cannot refuse (units, class rates adding up,
 * CIDRs, selector operators without values) ends here.
 */
import { checkPolicyDirectionSchema, policyDirectionTree, policySource } from '../config/bandwidth-policy.ts';
import { ConfigError } from '../config/errors.ts';
import { DIRECTIONS, type Direction } from '../config/policy.ts';
import { readSelector, type LabelSelector } from './selector.ts';

export const POLICY_GROUP = 'tcqos.io';
export const POLICY_VERSION = 'v1alpha1';
export const POLICY_PLURAL = 'bandwidthpolicies';
export const POLICY_API_VERSION = `${POLICY_GROUP}/${POLICY_VERSION}`;
export { POLICY_KIND } from '../config/bandwidth-policy.ts';

/** Kubernetes' int32, the range of spec.priority. */
export const PRIORITY_RANGE = { minimum: -(2 ** 31), maximum: 2 ** 31 - 1 } as const;
/** A network name as a conflist's "name" may be. */
export const MAX_NETWORK_NAME = 256;

/** What the agent keeps of a BandwidthPolicy object: who it is and its spec, unchecked. */
export interface PolicyObject {
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string;
  /** metadata.generation: moves on every spec change, never on a status write. */
  readonly generation: number;
  readonly spec: unknown;
}

/** A checked BandwidthPolicy. */
export interface BandwidthPolicy {
  /** "namespace/name" */
  readonly key: string;
  readonly namespace: string;
  readonly selector: LabelSelector;
  /** The network (a conflist's "name") it is for; absent: every network of the pods it selects. */
  readonly network?: string;
  readonly priority: number;
  /** spec.egress and spec.ingress as written (checked). */
  readonly trees: Readonly<Partial<Record<Direction, Readonly<Record<string, unknown>>>>>;
}

const SPEC_KEYS = ['podSelector', 'network', 'priority', ...DIRECTIONS];

export function policyKey(policy: { readonly namespace: string; readonly name: string }): string {
  return `${policy.namespace}/${policy.name}`;
}

/** The object decoded from the API's JSON (undefined when it is not one). */
export function policyObject(raw: unknown): PolicyObject | undefined {
  const metadata = (raw as { metadata?: { name?: unknown; namespace?: unknown; uid?: unknown; generation?: unknown } } | undefined)?.metadata;
  if (typeof metadata?.name !== 'string' || typeof metadata.namespace !== 'string') return undefined;
  return {
    namespace: metadata.namespace,
    name: metadata.name,
    ...(typeof metadata.uid === 'string' ? { uid: metadata.uid } : {}),
    generation: typeof metadata.generation === 'number' ? metadata.generation : 0,
    spec: (raw as { spec?: unknown }).spec,
  };
}

/**
 * The policy, checked (CIDR support must be loaded: src/config/cidr.ts); throws ConfigError from
 * "BandwidthPolicy namespace/name" naming the field ("spec.egress.classes[1].rate").
 */
export function checkPolicy(object: PolicyObject): BandwidthPolicy {
  const key = policyKey(object);
  const source = policySource(key);
  const spec = object.spec;
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new ConfigError('spec', 'must be an object', source);
  const fields = spec as Record<string, unknown>;
  const unknown = Object.keys(fields).find((field) => !SPEC_KEYS.includes(field));
  if (unknown !== undefined) throw new ConfigError(`spec.${unknown}`, `unknown key (known: ${SPEC_KEYS.join(', ')})`, source);
  if (fields['podSelector'] === undefined) throw new ConfigError('spec.podSelector', 'is required ({} selects every pod of the namespace)', source);
  let selector: LabelSelector;
  try {
    selector = readSelector(fields['podSelector'], 'spec.podSelector');
  } catch (error) {
    throw error instanceof ConfigError ? error.from(source) : error;
  }
  const network = fields['network'];
  if (network !== undefined && (typeof network !== 'string' || network === '' || network.length > MAX_NETWORK_NAME)) {
    throw new ConfigError('spec.network', `must be a network name (a conflist's "name", 1 to ${MAX_NETWORK_NAME} characters)`, source);
  }
  const priority = fields['priority'] ?? 0;
  if (!Number.isInteger(priority) || (priority as number) < PRIORITY_RANGE.minimum || (priority as number) > PRIORITY_RANGE.maximum) {
    throw new ConfigError('spec.priority', 'must be a whole number (an int32)', source);
  }
  const trees: Partial<Record<Direction, Readonly<Record<string, unknown>>>> = {};
  for (const direction of DIRECTIONS) {
    const tree = fields[direction];
    if (tree === undefined) continue;
    checkPolicyDirectionSchema(tree, direction, key);
    policyDirectionTree({ name: key, tree: tree as Record<string, unknown> }, direction);
    trees[direction] = tree as Record<string, unknown>;
  }
  return { key, namespace: object.namespace, selector, ...(network !== undefined ? { network: network as string } : {}), priority: priority as number, trees };
}
