/**
 * ajv's first complaint -> a ConfigError naming the field as the user wrote it
 * ("egress.classes[0].rate"), and for an unknown key, the known key it most likely meant.
 */
import { ConfigError } from './errors.ts';
import { CGROUP_ROOT_PATTERN, CGROUP_ROOT_RULE, IFNAME_PATTERN, IFNAME_RULE } from './names.ts';
import { nearest } from './suggest.ts';
import type { SchemaError } from './validate-config.generated.js';

/** The parts of a JSON Schema that say which keys an object may have. */
/** Patterns said in words (the others are quoted as they are). */
const PATTERN_WORDS: Readonly<Record<string, string>> = {
  [IFNAME_PATTERN.source]: `is not an interface name (${IFNAME_RULE})`,
  '^/': 'must be an absolute path',
  [CGROUP_ROOT_PATTERN.source]: `must be ${CGROUP_ROOT_RULE}`,
};

interface SchemaNode {
  readonly properties?: Readonly<Record<string, SchemaNode>>;
  readonly items?: SchemaNode;
}

/**
 * @param schema the schema that produced the errors, to look up the keys known where one was not
 * @param where.prefix the field path of the document's root ("runtimeConfig.bandwidth." when validated alone)
 * @param where.root what to call the document itself when the problem is its own type
 */
export function schemaError(
  errors: readonly SchemaError[] | null | undefined,
  schema: object,
  where: { readonly prefix?: string; readonly root: string },
): ConfigError {
  const prefix = where.prefix ?? '';
  const first = errors?.[0];
  if (!first) return new ConfigError(prefix.replace(/\.$/, '') || where.root, 'is invalid');
  const segments = first.instancePath.split('/').slice(1).map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'));
  const path = prefix + segments.map((part) => (/^\d+$/.test(part) ? `[${part}]` : `.${part}`)).join('').replace(/^\./, '');
  const at = (key: string) => (path && !path.endsWith('.') ? `${path}.${key}` : `${path}${key}`);
  const params = first.params;
  if (first.keyword === 'additionalProperties') {
    const key = String(params['additionalProperty']);
    const known = Object.keys(nodeAt(schema as SchemaNode, segments)?.properties ?? {});
    const guess = nearest(key, known);
    return new ConfigError(at(key), guess ? `unknown key, did you mean ${JSON.stringify(guess)}?` : 'unknown key');
  }
  if (first.keyword === 'required') return new ConfigError(at(String(params['missingProperty'])), 'is required');
  if (first.keyword === 'dependencies') {
    return new ConfigError(at(String(params['property'])), `needs "${String(params['missingProperty'])}" beside it`);
  }
  const words = first.keyword === 'pattern' ? PATTERN_WORDS[String(params['pattern'])] : undefined;
  return new ConfigError(path.replace(/\.$/, '') || where.root, words ?? first.message ?? first.keyword);
}

/** The sub-schema that describes the value at `segments`. */
function nodeAt(schema: SchemaNode, segments: readonly string[]): SchemaNode | undefined {
  let node: SchemaNode | undefined = schema;
  for (const segment of segments) {
    if (!node) return undefined;
    node = /^\d+$/.test(segment) && node.items ? node.items : node.properties && Object.hasOwn(node.properties, segment) ? node.properties[segment] : undefined;
  }
  return node;
}
