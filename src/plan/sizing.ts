/**
 * Burst, cburst and quantum derived from rate and MTU, so nobody has to guess them.
 *
 * - burst/cburst: one millisecond at the rate (tc's own default, rate/HZ) plus one full frame, so a
 *   class can always send a whole frame and a GSO train at high rates is not starved by timer
 *   granularity. Small buckets also keep a new pod from overshooting in its first second.
 * - quantum: one millisecond at the rate, bounded below by one frame (DRR must move at least a
 *   frame per round) and above by HTB's 200000-byte limit; proportional to rate in between, so
 *   borrowed bandwidth is shared in proportion to the classes' rates (what r2q aims for), without
 *   HTB's "quantum is big" warnings.
 */
export const ETHERNET_HEADER_BYTES = 14;
const BUCKET_SECONDS = 0.001;
const MAX_QUANTUM_BYTES = 200_000;

export function frameBytes(mtu: number): number {
  return mtu + ETHERNET_HEADER_BYTES;
}

export function defaultBurstBytes(rateBytesPerSecond: number, mtu: number): number {
  return Math.ceil(rateBytesPerSecond * BUCKET_SECONDS) + frameBytes(mtu);
}

export function quantumBytes(rateBytesPerSecond: number, mtu: number): number {
  return Math.min(MAX_QUANTUM_BYTES, Math.max(frameBytes(mtu), Math.ceil(rateBytesPerSecond * BUCKET_SECONDS)));
}

/** tc stores rates in bytes per second. */
export function toBytesPerSecond(bitsPerSecond: number): number {
  return Math.max(1, Math.round(bitsPerSecond / 8));
}
