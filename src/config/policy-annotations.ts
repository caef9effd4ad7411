/**
 * The pod's policy annotations: `tcqos.io/policy` holds `{"egress": {...}, "ingress": {...}}` in the
 * conflist's direction schema; `tcqos.io/policy.<network name>` is for that network only and, when
 * present, replaces the generic one (the more specific wins, no merge). Checked by the same schema
 * and the same tree rules as the conflist, and every complaint names the annotation.
 */
import { ConfigError } from './errors.ts';
import type { Direction, DirectionPolicy } from './policy.ts';
import type { RawDirections } from './raw.ts';
import { policyAnnotationSchema } from './schema.ts';
import { schemaError } from './schema-errors.ts';
import { directionTree } from './tree.ts';
import { LIMITS } from './units.ts';
import { validatePolicyAnnotation } from './validate-config.generated.js';

export const POLICY_ANNOTATION = 'tcqos.io/policy';

/** The annotation that applies to `network`, parsed and checked against the schema. */
export interface PolicyAnnotation {
  /** Its key, e.g. "tcqos.io/policy.net1". */
  readonly key: string;
  readonly document: RawDirections;
}

/** The annotations tcqos reads (tcqos.io/policy and tcqos.io/policy.<network>), e.g. to keep in a record. */
export function policyAnnotations(annotations: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(annotations).filter(([key]) => key === POLICY_ANNOTATION || key.startsWith(`${POLICY_ANNOTATION}.`)));
}

export function readPolicyAnnotation(annotations: Readonly<Record<string, unknown>>, network: string | undefined): PolicyAnnotation | undefined {
  const specific = network === undefined ? undefined : `${POLICY_ANNOTATION}.${network}`;
  const key = specific !== undefined && Object.hasOwn(annotations, specific) ? specific : Object.hasOwn(annotations, POLICY_ANNOTATION) ? POLICY_ANNOTATION : undefined;
  if (key === undefined) return undefined;
  const source = `annotation ${key}`;
  const text = annotations[key];
  if (typeof text !== 'string') throw new ConfigError('', 'is not a string', source);
  checkAnnotationSize(key, text);
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    // The parser's words locate the mistake; control characters go, so the message stays one line.
    throw new ConfigError('', `is not valid JSON (${(error as Error).message.replace(/[\u0000-\u001f]/g, ' ')})`, source);
  }
  if (!validatePolicyAnnotation(document)) throw schemaError(validatePolicyAnnotation.errors, policyAnnotationSchema, { root: '' }).from(source);
  return { key, document: document as RawDirections };
}

/** Refuses an annotation value larger than tcqos reads at all, before anything parses it. */
export function checkAnnotationSize(key: string, text: string): void {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > LIMITS.maxAnnotationBytes) {
    throw new ConfigError('', `is ${bytes} bytes, more than the ${LIMITS.maxAnnotationBytes} tcqos reads`, `annotation ${key}`);
  }
}

/** The annotation's tree for one direction (CIDR support must be loaded when it lists peers). */
export function annotatedTree(annotation: PolicyAnnotation, direction: Direction): DirectionPolicy | undefined {
  const tree = annotation.document[direction];
  if (!tree) return undefined;
  try {
    return directionTree(tree, direction);
  } catch (error) {
    throw error instanceof ConfigError ? error.from(`annotation ${annotation.key}`) : error;
  }
}
