/**
 * The reference plugin is written in Go, whose JSON decoder matches keys case-insensitively, so
 * configs in the wild spell "bandWidth" or "IngressRate". tcqos accepts those spellings of the
 * reference's keys (and only those), renaming them before the strict schema runs.
 *
 * A spelling in the admin's conflist is renamed with a warning (the admin can fix it). The keys of
 * runtimeConfig.bandwidth are renamed silently: containerd and CRI-O always send the Go field names
 * ("IngressRate", ...), which nobody can change.
 */
import { quote } from './quote.ts';

const REFERENCE_KEYS = ['ingressRate', 'ingressBurst', 'egressRate', 'egressBurst', 'unshapedSubnets', 'shapedSubnets'];
const TOP_LEVEL_KEYS = [...REFERENCE_KEYS, 'runtimeConfig'];
const RUNTIME_KEYS = ['bandwidth'];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Renames the keys of `object` that match `canonical` but for case; `renamed` hears of each. */
function rename(object: Record<string, unknown>, canonical: readonly string[], renamed?: (from: string, to: string) => void): Record<string, unknown> {
  const byLowerCase = new Map(canonical.map((key) => [key.toLowerCase(), key]));
  const copy: Record<string, unknown> = {};
  // Own properties only: a "__proto__" key stays a key (and is refused as unknown), never a prototype.
  const put = (key: string, value: unknown) => Object.defineProperty(copy, key, { value, enumerable: true, writable: true, configurable: true });
  for (const [key, value] of Object.entries(object)) {
    const wanted = byLowerCase.get(key.toLowerCase());
    if (wanted && wanted !== key) {
      if (Object.hasOwn(object, wanted)) continue; // when the exact spelling is there too, it is the one read
      renamed?.(key, wanted);
      put(wanted, value);
    } else {
      put(key, value);
    }
  }
  return copy;
}

/** runtimeConfig.bandwidth with the reference's key spellings, renamed without a word. */
export function canonicalRuntimeKeys(bandwidth: Record<string, unknown>): Record<string, unknown> {
  return rename(bandwidth, REFERENCE_KEYS);
}

/** The network configuration with the reference's key spellings; a warning for each the admin wrote. */
export function canonicalKeys(config: Record<string, unknown>, warnings: string[]): Record<string, unknown> {
  const warn = (where: string) => (from: string, to: string) => warnings.push(`config key ${quote(where + from)} read as "${where}${to}"`);
  const top = rename(config, TOP_LEVEL_KEYS, warn(''));
  if (isObject(top['runtimeConfig'])) {
    const runtime = rename(top['runtimeConfig'], RUNTIME_KEYS, warn('runtimeConfig.'));
    if (isObject(runtime['bandwidth'])) runtime['bandwidth'] = canonicalRuntimeKeys(runtime['bandwidth']);
    top['runtimeConfig'] = runtime;
  }
  return top;
}
