/** Current rates from two readings of the byte counters (stats' NOW column, top's bars). Pure. */
import type { AttachmentStats } from '../attachment/stats.ts';

/** The class name under which an attachment's class on its uplink's tree is keyed (no configured class can be named so). */
export const ON_UPLINK = '(uplink)';

/** A class's key, or with `className` '' its direction's. */
export function rateKey(attachment: Pick<AttachmentStats, 'containerId' | 'ifname'>, direction: string, className: string): string {
  return `${attachment.containerId}\0${attachment.ifname}\0${direction}\0${className}`;
}

function byteCounts(stats: readonly AttachmentStats[]): Map<string, number> {
  const bytes = new Map<string, number>();
  for (const a of stats) {
    for (const d of a.directions) {
      bytes.set(rateKey(a, d.direction, ''), d.bytes);
      for (const c of d.classes) bytes.set(rateKey(a, d.direction, c.name), c.bytes);
    }
    for (const u of a.onUplink ?? []) bytes.set(rateKey(a, u.direction, ON_UPLINK), u.bytes);
  }
  return bytes;
}

/**
 * Bits per second each class and direction sent between two readings `seconds` apart; nothing for
 * what only one reading has, or whose counter went down (re-created since).
 */
export function currentRates(before: readonly AttachmentStats[], after: readonly AttachmentStats[], seconds: number): Map<string, number> {
  const earlier = byteCounts(before);
  const rates = new Map<string, number>();
  for (const [key, bytes] of byteCounts(after)) {
    const was = earlier.get(key);
    if (was !== undefined && bytes >= was && seconds > 0) rates.set(key, ((bytes - was) * 8) / seconds);
  }
  return rates;
}
