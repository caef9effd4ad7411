/** What a chained plugin needs from the previous plugin's result: the attachment's interface. */
import { IFNAME_PATTERN } from '../config/names.ts';
import { CniError, ErrorCode } from './errors.ts';

interface ResultInterface {
  name?: unknown;
  sandbox?: unknown;
}

/** Confirms that prevResult lists `ifname` inside a sandbox (the pod's netns). */
export function requireSandboxInterface(prevResult: unknown, ifname: string): void {
  if (prevResult === undefined) {
    throw new CniError(ErrorCode.invalidConfig, 'tcqos must be chained after a plugin that creates the interface: no prevResult');
  }
  const interfaces = (prevResult as { interfaces?: unknown }).interfaces;
  if (!Array.isArray(interfaces) || interfaces.length === 0) {
    throw new CniError(ErrorCode.invalidConfig, 'prevResult lists no interfaces: chain tcqos after the plugin that creates the pod interface');
  }
  const found = (interfaces as Array<ResultInterface | null>).some(
    (candidate) => typeof candidate === 'object' && candidate !== null && candidate.name === ifname && typeof candidate.sandbox === 'string' && candidate.sandbox !== '',
  );
  if (!found) {
    throw new CniError(ErrorCode.invalidConfig, `prevResult has no interface "${ifname}" inside the pod sandbox`);
  }
}

/**
 * The interfaces the chain's result lists outside the pod (no sandbox): ptp's host veth, bridge's
 * bridge and host veth. Only names that could be interface names are returned.
 */
export function hostInterfaces(prevResult: unknown): string[] {
  const interfaces = (prevResult as { interfaces?: unknown } | undefined)?.interfaces;
  if (!Array.isArray(interfaces)) return [];
  return (interfaces as Array<ResultInterface | null>).flatMap((candidate) =>
    typeof candidate === 'object' && candidate !== null && typeof candidate.name === 'string' && IFNAME_PATTERN.test(candidate.name) && !candidate.sandbox ? [candidate.name] : [],
  );
}
