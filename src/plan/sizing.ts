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
 * - leaf queue: a tbf holding at most 10 ms of traffic at the class's ceil, and at least 12 frames:
 *   below ~10 Mbit/s one TCP flow needs 8 to keep the class busy (3 frames: 72% at 2 Mbit/s,
 *   4: 95.1% at 1 Mbit/s, 8: 96.6%), four flows 12 (8: 97.8% of the wire at 10 Mbit/s, 12: 99.8%).
 *   HTB's default leaf counts packets, and one GSO packet can be 64 KB, so a full queue meant
 *   30-50 ms of delay at 10 Mbit/s; tbf counts bytes and splits GSO packets larger than its
 *   bucket into frames, so a byte limit does not starve TCP (measured: 95.3-95.6% goodput,
 *   ping under load ~5 ms at 10 and 100 Mbit/s).
 */
export const ETHERNET_HEADER_BYTES = 14;
const BUCKET_SECONDS = 0.001;
const MAX_QUANTUM_BYTES = 200_000;
const LEAF_QUEUE_SECONDS = 0.01;
const LEAF_QUEUE_MIN_FRAMES = 12;
/**
 * The leaf tbf's rate over its class's ceil. HTB does the shaping; a tbf at the ceil itself is a
 * second bucket in series that HTB finds holding packets it will not release yet (dmesg: "htb: tbf
 * qdisc 7C10: is non-work-conserving?"), which cost ~1 point of the wire with 4 BBR flows at
 * 10 Mbit/s. At twice the ceil it only bounds the queue and splits GSO packets.
 */
export const LEAF_RATE_OVER_CEIL = 2;

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
