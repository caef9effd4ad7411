/** The network configuration on stdin: decoded once, with prevResult kept as the exact bytes sent. */
import { memberText } from '../text/json.ts';
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
  return { config: config as Record<string, unknown>, rawPrevResult: memberText(text, 'prevResult') };
}
