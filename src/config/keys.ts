/**
 * The reference plugin is written in Go, whose JSON decoder matches keys case-insensitively, so
 * configs in the wild spell "bandWidth" or "IngressRate". tcqos accepts those spellings of the
 * reference's keys (and only those), renaming them with a warning, before the strict schema runs.
 */
const REFERENCE_KEYS = ['ingressRate', 'ingressBurst', 'egressRate', 'egressBurst', 'unshapedSubnets', 'shapedSubnets'];
const TOP_LEVEL_KEYS = [...REFERENCE_KEYS, 'runtimeConfig'];
const RUNTIME_KEYS = ['bandwidth'];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function rename(object: Record<string, unknown>, canonical: readonly string[], where: string, warnings: string[]): Record<string, unknown> {
  const byLowerCase = new Map(canonical.map((key) => [key.toLowerCase(), key]));
  const renamed: Record<string, unknown> = {};
  // Own properties only: a "__proto__" key stays a key (and is refused as unknown), never a prototype.
  const put = (key: string, value: unknown) => Object.defineProperty(renamed, key, { value, enumerable: true, writable: true, configurable: true });
  for (const [key, value] of Object.entries(object)) {
    const wanted = byLowerCase.get(key.toLowerCase());
    if (wanted && wanted !== key) {
      if (Object.hasOwn(object, wanted)) continue; // when the exact spelling is there too, it is the one read
      warnings.push(`config key ${JSON.stringify(where + key)} read as "${where}${wanted}"`);
      put(wanted, value);
    } else {
      put(key, value);
    }
  }
  return renamed;
}

export function canonicalKeys(config: Record<string, unknown>, warnings: string[]): Record<string, unknown> {
  const top = rename(config, TOP_LEVEL_KEYS, '', warnings);
  if (isObject(top['runtimeConfig'])) {
    const runtime = rename(top['runtimeConfig'], RUNTIME_KEYS, 'runtimeConfig.', warnings);
    if (isObject(runtime['bandwidth'])) {
      runtime['bandwidth'] = rename(runtime['bandwidth'], REFERENCE_KEYS, 'runtimeConfig.bandwidth.', warnings);
    }
    top['runtimeConfig'] = runtime;
  }
  return top;
}
