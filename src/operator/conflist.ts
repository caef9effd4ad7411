/**
 * Chaining tcqos into a conflist's text, pure: what `tcqos install` writes and what `tcqos
 * uninstall` compares against. No file is read or written here.
 */
import { isSupportedVersion, SUPPORTED_VERSIONS } from '../cni/version.ts';
import { ConfigError } from '../config/errors.ts';
import { normalizeConfig } from '../config/normalize.ts';

/** What tcqos declares, so runtimes hand it the bandwidth values and the pod's annotations. */
export const TCQOS_CAPABILITIES = { bandwidth: true, 'io.kubernetes.cri.pod-annotations': true } as const;

type Plugin = Record<string, unknown>;

export interface Conflist {
  readonly name?: string;
  readonly cniVersion?: string;
  readonly plugins: readonly Plugin[];
  readonly document: Record<string, unknown>;
}

/** The text is not a conflist: not JSON, or no "plugins" list of objects. */
export class ConflistParseError extends Error {}

export type ChainOutcome =
  | { readonly kind: 'added'; readonly text: string }
  | { readonly kind: 'replaced-bandwidth'; readonly text: string; readonly keptKeys: readonly string[] }
  | { readonly kind: 'already-chained' }
  /** A conflist tcqos must not be chained into as it stands; `reason` says why, for the operator. */
  | { readonly kind: 'refused'; readonly reason: string };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function parseConflist(text: string): Conflist {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new ConflistParseError(`not JSON: ${(error as Error).message}`);
  }
  if (!isObject(document)) throw new ConflistParseError('not a JSON object');
  const plugins = document['plugins'];
  if (!Array.isArray(plugins) || !plugins.every(isObject)) throw new ConflistParseError('no "plugins" list of objects');
  const name = typeof document['name'] === 'string' ? document['name'] : undefined;
  const cniVersion = typeof document['cniVersion'] === 'string' ? document['cniVersion'] : undefined;
  return { ...(name !== undefined ? { name } : {}), ...(cniVersion !== undefined ? { cniVersion } : {}), plugins, document };
}

export function chainsTcqos(conflist: Conflist): boolean {
  return conflist.plugins.some((plugin) => plugin['type'] === 'tcqos');
}

/**
 * Adds tcqos at the end of the chain, or puts it in the place of the reference `bandwidth` plugin
 * with that entry's keys (tcqos reads the same ones), so the pod is never shaped twice.
 */
export async function chainTcqos(text: string, conflist: Conflist): Promise<ChainOutcome> {
  if (chainsTcqos(conflist)) return { kind: 'already-chained' };
  if (conflist.cniVersion === undefined || !isSupportedVersion(conflist.cniVersion)) {
    return { kind: 'refused', reason: `cniVersion ${JSON.stringify(conflist.cniVersion ?? null)} is not one tcqos speaks (${SUPPORTED_VERSIONS.join(', ')})` };
  }
  const index = conflist.plugins.findIndex((plugin) => plugin['type'] === 'bandwidth');
  if (index < 0) {
    const plugins = [...conflist.plugins, { type: 'tcqos', capabilities: { ...TCQOS_CAPABILITIES } }];
    return { kind: 'added', text: formatLike(text, { ...conflist.document, plugins }) };
  }
  const bandwidth = conflist.plugins[index]!;
  const capabilities = isObject(bandwidth['capabilities']) ? bandwidth['capabilities'] : {};
  const entry = { ...bandwidth, type: 'tcqos', capabilities: { ...capabilities, ...TCQOS_CAPABILITIES } };
  const problem = await entryProblem(entry, conflist);
  if (problem) return { kind: 'refused', reason: `its bandwidth entry is not a valid tcqos entry (${problem})` };
  const plugins = conflist.plugins.map((plugin, at) => (at === index ? entry : plugin));
  return {
    kind: 'replaced-bandwidth',
    text: formatLike(text, { ...conflist.document, plugins }),
    keptKeys: Object.keys(bandwidth).filter((key) => key !== 'type'),
  };
}

/**
 * Runs the plugin's own config check on the entry as a runtime would send it: a key or value tcqos
 * refuses would otherwise fail every pod's ADD on this network.
 */
async function entryProblem(entry: Plugin, conflist: Conflist): Promise<string | undefined> {
  try {
    await normalizeConfig({ ...entry, cniVersion: conflist.cniVersion, ...(conflist.name !== undefined ? { name: conflist.name } : {}) });
    return undefined;
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
}

/**
 * Serialises the new document with the original's indentation and final newline, so a diff of
 * the file shows the chain's change and little else.
 */
function formatLike(original: string, document: unknown): string {
  const indent = /^([ \t]+)\S/m.exec(original)?.[1];
  const body = indent === undefined ? JSON.stringify(document) : JSON.stringify(document, null, indent);
  return original.endsWith('\n') ? `${body}\n` : body;
}
