/** The network configuration on stdin: decoded once, with prevResult kept as the exact bytes sent. */
import { CniError, ErrorCode } from './errors.ts';

/** Far above any real conflist entry; stops a runaway writer from eating the node's memory. */
export const MAX_STDIN_BYTES = 1024 * 1024;

export interface NetworkConfig {
  readonly config: Record<string, unknown>;
  /** prevResult exactly as it appeared on stdin, so passing it on changes nothing. */
  readonly rawPrevResult: string | undefined;
}

export function decodeStdin(bytes: Buffer): NetworkConfig {
  if (bytes.length > MAX_STDIN_BYTES) {
    throw new CniError(ErrorCode.decodeFailure, `network configuration on stdin is ${bytes.length} bytes, more than the ${MAX_STDIN_BYTES} accepted`);
  }
  const text = bytes.toString('utf8');
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (error) {
    throw new CniError(ErrorCode.decodeFailure, 'network configuration on stdin is not valid JSON', (error as Error).message);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new CniError(ErrorCode.decodeFailure, 'network configuration on stdin must be a JSON object');
  }
  return { config: config as Record<string, unknown>, rawPrevResult: topLevelValueText(text, 'prevResult') };
}

/**
 * The source text of one top-level member of a JSON object already known to be valid.
 * A duplicate key resolves to its last occurrence, as JSON.parse does.
 */
export function topLevelValueText(json: string, key: string): string | undefined {
  let at = skipSpace(json, 0) + 1; // past '{'
  let found: string | undefined;
  for (;;) {
    at = skipSpace(json, at);
    if (json[at] === '}') return found;
    const keyEnd = skipString(json, at);
    const name = JSON.parse(json.slice(at, keyEnd)) as string;
    const valueStart = skipSpace(json, skipSpace(json, keyEnd) + 1); // past ':'
    const valueEnd = skipValue(json, valueStart);
    if (name === key) found = json.slice(valueStart, valueEnd);
    at = skipSpace(json, valueEnd);
    if (json[at] === ',') at++;
  }
}

function skipSpace(json: string, at: number): number {
  while (at < json.length && ' \t\n\r'.includes(json[at]!)) at++;
  return at;
}

function skipString(json: string, at: number): number {
  for (let i = at + 1; i < json.length; i++) {
    if (json[i] === '\\') i++;
    else if (json[i] === '"') return i + 1;
  }
  return json.length;
}

function skipValue(json: string, at: number): number {
  const first = json[at];
  if (first === '"') return skipString(json, at);
  if (first === '{' || first === '[') {
    let depth = 0;
    for (let i = at; i < json.length; i++) {
      const c = json[i];
      if (c === '"') i = skipString(json, i) - 1;
      else if (c === '{' || c === '[') depth++;
      else if ((c === '}' || c === ']') && --depth === 0) return i + 1;
    }
    return json.length;
  }
  let i = at;
  while (i < json.length && !',}] \t\n\r'.includes(json[i]!)) i++;
  return i;
}
