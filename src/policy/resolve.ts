/**
 * Which BandwidthPolicy shapes an attachment, per direction. The precedence (the README's table):
 *
 *   1. the pod's own tcqos.io/policy or tcqos.io/policy.<network> annotation replaces every policy
 *      (src/config/derive.ts: a policy is an input only where no annotation is);
 *   2. among the policies of the pod's namespace whose podSelector selects it and that define the
 *      direction: one naming the attachment's network (spec.network) beats one naming none (as
 *      tcqos.io/policy.<network> beats tcqos.io/policy); one naming another network is ignored;
 *   3. then the highest spec.priority wins; 4. then the first name in alphabetical order.
 *
 * Each direction is resolved on its own: a policy that sets only egress leaves ingress to the
 * next one that sets it. The result is then fitted under the conflist's cap and tightened by
 * kubernetes.io/*-bandwidth exactly as an annotation's tree is (derive.ts).
 */
import { DIRECTIONS, type BandwidthPolicyInput, type Direction, type PolicyDirectionInput } from '../config/policy.ts';
import type { BandwidthPolicy } from './object.ts';
import { selects } from './selector.ts';

/** What resolution needs of a policy that selects the pod (what the plugin reads from the agent's entry). */
export type Candidate = Pick<BandwidthPolicy, 'key' | 'network' | 'priority' | 'trees'>;

/** The policies that select a pod: those of its namespace whose podSelector its labels satisfy, in precedence order. */
export function selecting(policies: Iterable<BandwidthPolicy>, pod: { readonly namespace: string; readonly labels: Readonly<Record<string, string>> }): BandwidthPolicy[] {
  const found: BandwidthPolicy[] = [];
  for (const policy of policies) if (policy.namespace === pod.namespace && selects(policy.selector, pod.labels)) found.push(policy);
  return found.sort(byPrecedence);
}

/** Precedence among policies that all apply: one naming a network first, then the highest priority, then the name. */
export function byPrecedence(a: Candidate, b: Candidate): number {
  const specific = Number(b.network !== undefined) - Number(a.network !== undefined);
  if (specific) return specific;
  if (a.priority !== b.priority) return b.priority - a.priority;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** The trees in force for an attachment on `network`, per direction, and which policy each comes from. */
export function resolveForNetwork(candidates: readonly Candidate[], network: string): BandwidthPolicyInput | undefined {
  const applicable = candidates.filter((candidate) => candidate.network === undefined || candidate.network === network).sort(byPrecedence);
  const resolved: Partial<Record<Direction, PolicyDirectionInput>> = {};
  for (const direction of DIRECTIONS) {
    const winner = applicable.find((candidate) => candidate.trees[direction] !== undefined);
    if (winner) resolved[direction] = { name: winner.key, tree: winner.trees[direction]! };
  }
  return Object.keys(resolved).length ? resolved : undefined;
}

/** The policies named in a resolution (one or two). */
export function policiesIn(input: BandwidthPolicyInput | undefined): string[] {
  return [...new Set(DIRECTIONS.flatMap((direction) => (input?.[direction] ? [input[direction].name] : [])))];
}
