/**
 * Counter readings for wire rates. A reading goes through a process (`tc -s`, `ip netns exec cat`)
 * that a loaded VM can take a tenth of a second to start; the bytes it returns were counted somewhere
 * inside that span. Stamping a reading with the middle of its span, not its start or end, keeps that
 * wait out of the seconds the bytes are divided by (over a 4 s window an end stamp understated a
 * saturated 100 Mbit/s class by 3-4%).
 */
export interface Stamped<T> {
  readonly value: T;
  /** performance.now() at the middle of the read, in ms. */
  readonly at: number;
}

export async function stamped<T>(read: () => Promise<T>): Promise<Stamped<T>> {
  const start = performance.now();
  const value = await read();
  return { value, at: (start + performance.now()) / 2 };
}

/** Mbit/s of a byte count that grew from `before` to `after`. */
export function mbitBetween(before: Stamped<number>, after: Stamped<number>): number {
  return ((after.value - before.value) * 8) / ((after.at - before.at) / 1000) / 1e6;
}
