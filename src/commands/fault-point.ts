/**
 * Deterministic faults for the robustness tests, read from TCQOS_FAULT (set only by tests; runtimes
 * never pass it). "kill:<point>" SIGKILLs the plugin at that point of ADD; "fail-line:<n>" makes
 * the n-th line of the tc batch fail, as a kernel refusal halfway through would.
 */
export type FaultPoint = 'after-read' | 'after-ifb' | 'after-tc';

export function maybeKill(env: NodeJS.ProcessEnv, point: FaultPoint): void {
  if (env['TCQOS_FAULT'] === `kill:${point}`) process.kill(process.pid, 'SIGKILL');
}

/** The batch lines, with a line tc must refuse put in at the requested position. */
export function withInjectedFailure(env: NodeJS.ProcessEnv, lines: string[]): string[] {
  const position = /^fail-line:(\d+)$/.exec(env['TCQOS_FAULT'] ?? '')?.[1];
  if (position === undefined) return lines;
  const at = Math.min(Number(position), lines.length);
  return [...lines.slice(0, at), 'qdisc add dev tcqos-fault-injected root htb', ...lines.slice(at)];
}
