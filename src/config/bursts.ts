/** How big a bucket tc can hold: HTB keeps a bucket as transmit time, so the limit depends on the rate. */
import { ConfigError } from './errors.ts';
import { LIMITS } from './units.ts';

/** The largest bucket tc can hold at `rate` (bits/s), in bytes. */
export function longestBurst(rate: number): number {
  return Math.floor((LIMITS.maxBurstSeconds * rate) / 8);
}

/** Refuses a burst (bytes) that tc could not hold at `rate`, naming the field. */
export function checkBurstTime(field: string, burst: number | undefined, rate: number): void {
  if (burst !== undefined && (burst * 8) / rate > LIMITS.maxBurstSeconds) {
    throw new ConfigError(field, `is ${Math.round((burst * 8) / rate)} s of traffic at the rate; tc cannot hold more than ${LIMITS.maxBurstSeconds} s`);
  }
}
