/**
 * Deterministic faults for the robustness tests, read from TCQOS_FAULT (set only by tests; runtimes
 * never pass it). "kill:<point>" SIGKILLs the process at that point of a use case; "fail-line:<n>"
 * makes the n-th line of the next tc batch fail, as a kernel refusal halfway through would.
 */
export type FaultPoint = 'after-read' | 'after-ifb' | 'after-tc';

export interface Faults {
  killAt(point: FaultPoint): void;
  /** The batch lines, with a line tc must refuse put in where asked. */
  intoBatch(lines: string[]): string[];
}

export const NO_FAULTS: Faults = { killAt: () => undefined, intoBatch: (lines) => lines };

export function faultsFrom(env: NodeJS.ProcessEnv): Faults {
  const fault = env['TCQOS_FAULT'];
  if (!fault) return NO_FAULTS;
  const position = /^fail-line:(\d+)$/.exec(fault)?.[1];
  return {
    killAt: (point) => {
      if (fault === `kill:${point}`) process.kill(process.pid, 'SIGKILL');
    },
    intoBatch: (lines) => {
      if (position === undefined) return lines;
      const at = Math.min(Number(position), lines.length);
      return [...lines.slice(0, at), 'qdisc add dev tcqos-fault-injected root htb', ...lines.slice(at)];
    },
  };
}
