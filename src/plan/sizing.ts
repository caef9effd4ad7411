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
 * - leaf queue: a tbf at the class's ceil holding at most 10 ms of traffic, and at least 8 frames:
 *   below ~10 Mbit/s one TCP flow needs that many to keep the class busy (3 frames: 72% at 2 Mbit/s,
 *   4: 95.1% at 1 Mbit/s, 8: 96.6%). 12 frames (or a tbf at twice the ceil) lifted four BBR flows in
 *   one 10 Mbit/s class from 97.8% to 99.8% of the wire, but let a class borrowing up to its ceil
 *   take up to 6.5% more than its rate from a busy 10 Mbit/s neighbour: the guarantee comes first.
 *   HTB's default leaf counts packets, and one GSO packet can be 64 KB, so a full queue meant
 *   30-50 ms of delay at 10 Mbit/s; tbf counts bytes and splits GSO packets larger than its
 *   bucket into frames, so a byte limit does not starve TCP (measured: 95.3-95.6% goodput,
 *   ping under load ~5 ms at 10 and 100 Mbit/s).
 */
export const ETHERNET_HEADER_BYTES = 14;
const BUCKET_SECONDS = 0.001;
const MAX_QUANTUM_BYTES = 200_000;
const LEAF_QUEUE_SECONDS = 0.01;
const LEAF_QUEUE_MIN_FRAMES = 8;


export function frameBytes(mtu: number): number {
  return mtu + ETHERNET_HEADER_BYTES;
}

export function defaultBurstBytes(rateBytesPerSecond: number, mtu: number): number {
  return Math.ceil(rateBytesPerSecond * BUCKET_SECONDS) + frameBytes(mtu);
}

export function quantumBytes(rateBytesPerSecond: number, mtu: number): number {
  return Math.min(MAX_QUANTUM_BYTES, Math.max(frameBytes(mtu), Math.ceil(rateBytesPerSecond * BUCKET_SECONDS)));
}

export function leafQueueBytes(ceilBytesPerSecond: number, mtu: number): number {
  return Math.max(LEAF_QUEUE_MIN_FRAMES * frameBytes(mtu), Math.ceil(ceilBytesPerSecond * LEAF_QUEUE_SECONDS));
}

/** tc stores rates in bytes per second. */
export function toBytesPerSecond(bitsPerSecond: number): number {
  return Math.max(1, Math.round(bitsPerSecond / 8));
}
