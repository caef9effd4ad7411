/** What a chained plugin needs from the previous plugin's result: the attachment's interface. */
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
