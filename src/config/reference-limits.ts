/**
 * The reference `bandwidth` plugin's flat keys: `<direction>Rate` (bits/s) and `<direction>Burst`
 * (bits), in the conflist or in runtimeConfig.bandwidth, with its rules: both or neither, 0 means unset.
 */
import { atField, ConfigError } from './errors.ts';
import type { Direction } from './policy.ts';
import type { RawBandwidth } from './raw.ts';
import { parseRate, parseSize } from './units.ts';

/** A flat limit: rate in bits/s, burst in bytes. */
export interface FlatLimit {
  readonly rate: number;
  readonly burst: number;
}

/** @param prefix where `source` sits, for messages ("" or "runtimeConfig.bandwidth.") */
export function referenceLimit(source: RawBandwidth, direction: Direction, prefix: string): FlatLimit | undefined {
  const rateKey = `${direction}Rate` as const;
  const burstKey = `${direction}Burst` as const;
  const rate = source[rateKey] ?? 0;
  const burst = source[burstKey] ?? 0;
  if (rate === 0 && burst === 0) return undefined;
  if (burst === 0) throw new ConfigError(`${prefix}${burstKey}`, `must be set when ${rateKey} is (bits)`);
  if (rate === 0) throw new ConfigError(`${prefix}${rateKey}`, `must be set when ${burstKey} is (bits per second)`);
  return {
    rate: atField(`${prefix}${rateKey}`, () => parseRate(rate)),
    burst: atField(`${prefix}${burstKey}`, () => parseSize(burst)),
  };
}
