/**
 * Where the robustness tests inject faults into a session: kill the process at a point of a use
 * case, or make a tc batch fail halfway as a kernel refusal would. The shipped binary has none
 * (NO_FAULTS); only the test build (test/helpers/faults-entry.ts) reads them from its environment.
 */
export type FaultPoint = 'after-read' | 'after-ifb' | 'after-tc';

export interface Faults {
  killAt(point: FaultPoint): void;
  /** The batch lines, with a line tc must refuse put in where asked. */
  intoBatch(lines: string[]): string[];
}

export const NO_FAULTS: Faults = { killAt: () => undefined, intoBatch: (lines) => lines };
