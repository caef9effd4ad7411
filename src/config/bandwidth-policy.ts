/**
 * A BandwidthPolicy's direction trees (spec.egress, spec.ingress): checked by the same direction
 * schema and the same tree rules as the conflist and the tcqos.io/policy annotation, every
 * complaint naming the policy and the field as written in it ("BandwidthPolicy shop/web:
 * spec.egress.rate: ..."). The agent checks a policy with these when it arrives; ADD and every
 * update check the tree again as they derive the policy in force.
 */
import { ConfigError } from './errors.ts';
import type { Direction, DirectionPolicy, PolicyDirectionInput } from './policy.ts';
import type { RawDirection } from './raw.ts';
import { policyAnnotationSchema } from './schema.ts';
import { schemaError } from './schema-errors.ts';
import { directionTree } from './tree.ts';
import { validatePolicyAnnotation } from './validate-config.generated.js';

export const POLICY_KIND = 'BandwidthPolicy';

/** Where a policy's complaints come from: "BandwidthPolicy namespace/name". */
export function policySource(name: string): string {
  return `${POLICY_KIND} ${name}`;
}

/** The direction's tree, schema-checked only (units and tree rules are directionTree's). */
export function checkPolicyDirectionSchema(tree: unknown, direction: Direction, name: string): RawDirection {
  const document = { [direction]: tree };
  if (!validatePolicyAnnotation(document)) throw schemaError(validatePolicyAnnotation.errors, policyAnnotationSchema, { prefix: 'spec.', root: 'spec' }).from(policySource(name));
  return tree as RawDirection;
}

/** The policy's tree for `direction` as a DirectionPolicy (CIDR support must be loaded when it lists peers). */
export function policyDirectionTree(input: PolicyDirectionInput, direction: Direction): DirectionPolicy {
  const raw = checkPolicyDirectionSchema(input.tree, direction, input.name);
  try {
    return directionTree(raw, direction);
  } catch (error) {
    throw error instanceof ConfigError ? new ConfigError(`spec.${error.field}`, error.problem, policySource(input.name)) : error;
  }
}
