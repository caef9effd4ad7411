/**
 * Units and limits: the one place that says what a rate or a size means.
 *
 * Rates are bits per second on the wire (Ethernet header included, as tc counts them).
 * Sizes (bursts) are bytes inside tcqos; the reference plugin's `*Burst` keys are bits and are
 * converted at the boundary. tc's own `kbps`/`mbps` mean BYTES per second and `kb`/`mb` mean
 * kibibytes, so those spellings are refused with a hint instead of guessed at.
 */
import { quote } from './quote.ts';

export const LIMITS = {
  /** Lowest rate HTB can shape usefully (one 1514-byte frame per ~1.5 s). */
  minRateBitsPerSecond: 8_000,
  /** Highest rate accepted: 100 Gbit/s, far inside tc's 64-bit rates. */
  maxRateBitsPerSecond: 100_000_000_000,
  /** HTB stores a bucket as nanoseconds of transmit time in a u32 of psched ticks: keep well inside it. */
  maxBurstSeconds: 200,
  /** The reference plugin's limit: a burst of 4 GiB (in bits: 2^35) or more is refused. */
  maxBurstBytes: 2 ** 32 - 1,
  /** Default ceiling for bursts that arrive from the runtime (containerd sends 512 MiB). */
  defaultMaxBurstBytes: 4 * 1024 * 1024,
  maxClassesPerDirection: 64,
  maxPeersPerClass: 256,
  maxPortsPerClass: 32,
  /**
   * u32 filters one direction may ask for (peers x ports, after peers are merged): every packet
   * walks the list until one matches, so it bounds both the ADD (measured at the limit: see
   * docs/security.md) and the softirq cost of each packet. The schema's own bounds (64 classes of
   * 256 peers and 32 ports) would allow 524,288.
   */
  maxFiltersPerDirection: 4096,
  /** A pod annotation tcqos reads is refused above this size, before it is parsed (Kubernetes allows 256 KiB for all of them). */
  maxAnnotationBytes: 64 * 1024,
  maxClassNameLength: 32,
  maxPriority: 7,
} as const;

export class UnitError extends Error {}

/** A value the user wrote, as a message repeats it: numbers as they are, strings quoted. */
function said(value: number | string): string {
  return typeof value === 'number' ? String(value) : quote(value);
}

const RATE_UNITS: Record<string, number> = {
  '': 1,
  bit: 1,
  kbit: 1e3,
  mbit: 1e6,
  gbit: 1e9,
  tbit: 1e12,
  // Kubernetes quantities, as in the kubernetes.io/*-bandwidth annotations: bits per second.
  k: 1e3,
  m: 1e6,
  g: 1e9,
  t: 1e12,
  ki: 2 ** 10,
  mi: 2 ** 20,
  gi: 2 ** 30,
  ti: 2 ** 40,
};

const SIZE_UNITS: Record<string, number> = {
  // bits (decimal), converted to bytes
  bit: 1 / 8,
  kbit: 1e3 / 8,
  mbit: 1e6 / 8,
  gbit: 1e9 / 8,
  // bytes (binary)
  b: 1,
  byte: 1,
  bytes: 1,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
};

const QUANTITY = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$/;

function splitQuantity(text: string): { amount: number; unit: string } {
  const found = QUANTITY.exec(text);
  if (!found) throw new UnitError(`${quote(text)} is not a number with an optional unit`);
  return { amount: Number(found[1]), unit: (found[2] ?? '').toLowerCase() };
}

/** A rate in bits per second: an integer, or a string such as "40mbit", "1gbit", "10M". */
export function parseRate(value: number | string): number {
  let bits: number;
  if (typeof value === 'number') {
    bits = value;
  } else {
    const { amount, unit } = splitQuantity(value);
    if (unit.endsWith('bps')) {
      throw new UnitError(
        `${quote(value)}: in tc "${unit}" means BYTES per second; write the rate in bits, e.g. "${amount * 8}${unit.slice(0, -3)}bit"`,
      );
    }
    const scale = RATE_UNITS[unit];
    if (scale === undefined) {
      throw new UnitError(`${quote(value)}: unknown rate unit ${quote(unit)} (use bit, kbit, mbit, gbit, or K, M, G like Kubernetes)`);
    }
    bits = amount * scale;
  }
  if (!Number.isFinite(bits)) throw new UnitError(`${said(value)} is not a finite rate`);
  bits = Math.round(bits);
  if (bits < LIMITS.minRateBitsPerSecond) {
    throw new UnitError(`${said(value)} is below the lowest shapeable rate (${LIMITS.minRateBitsPerSecond} bit/s)`);
  }
  if (bits > LIMITS.maxRateBitsPerSecond) {
    throw new UnitError(`${said(value)} is above the highest rate accepted (${formatRate(LIMITS.maxRateBitsPerSecond)})`);
  }
  return bits;
}

/**
 * A size in bytes. Integers are BITS, as in the reference plugin's `*Burst` keys; strings carry
 * their unit: "64kbit", "1mbit" (bits) or "1500b", "64KiB", "4MiB" (bytes).
 */
export function parseSize(value: number | string): number {
  let bytes: number;
  if (typeof value === 'number') {
    bytes = value / 8;
  } else {
    const { amount, unit } = splitQuantity(value);
    const scale = SIZE_UNITS[unit];
    if (scale === undefined) {
      const hint = ['k', 'kb', 'm', 'mb', 'g', 'gb'].includes(unit)
        ? ` (tc reads "${unit}" as ${unit[0] === 'k' ? 'kibi' : unit[0] === 'm' ? 'mebi' : 'gibi'}bytes: write "${amount}${unit[0]!.toUpperCase()}iB" for bytes or "${amount}${unit[0]}bit" for bits)`
        : ' (use bit, kbit, mbit for bits or b, KiB, MiB for bytes)';
      throw new UnitError(`${quote(value)}: unknown size unit ${quote(unit)}${hint}`);
    }
    bytes = amount * scale;
  }
  if (!Number.isFinite(bytes) || bytes <= 0) throw new UnitError(`${said(value)} is not a positive size`);
  bytes = Math.ceil(bytes);
  if (bytes > LIMITS.maxBurstBytes) throw new UnitError(`${said(value)}: a burst cannot be more than 4GB`);
  return bytes;
}

export function formatRate(bitsPerSecond: number): string {
  for (const [unit, scale] of [['gbit', 1e9], ['mbit', 1e6], ['kbit', 1e3]] as const) {
    if (bitsPerSecond >= scale && bitsPerSecond % scale === 0) return `${bitsPerSecond / scale}${unit}`;
  }
  return `${bitsPerSecond}bit`;
}
