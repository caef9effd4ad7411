/**
 * The runtime's bandwidth values (runtimeConfig.bandwidth: what containerd or CRI-O make of a
 * pod's kubernetes.io/*-bandwidth annotations, or what Multus passes per network): checked, and
 * each direction's flat limit with its burst clamped.
 */
import { longestBurst } from './bursts.ts';
import { canonicalRuntimeKeys } from './keys.ts';
import type { Direction } from './policy.ts';
import type { RawBandwidth } from './raw.ts';
import { referenceLimit, type FlatLimit } from './reference-limits.ts';
import { runtimeBandwidthSchema } from './schema.ts';
import { schemaError } from './schema-errors.ts';
import { validateRuntimeBandwidth } from './validate-config.generated.js';

export const RUNTIME_PREFIX = 'runtimeConfig.bandwidth.';

/**
 * A runtime burst above this many seconds at the rate is clamped (unless maxBurst says otherwise):
 * containerd always sends 2^32-1 bits (512 MiB), CRI-O 2^35-9, which taken literally let a new pod
 * send at line rate for its first second.
 */
const RUNTIME_BURST_SECONDS = 0.05;
/** ... but never below one large GSO packet's worth. */
const RUNTIME_BURST_FLOOR_BYTES = 64 * 1024;

/** runtimeConfig.bandwidth, in the reference's spelling, checked by the same schema as in the conflist. */
export function readRuntime(raw: Record<string, unknown>): RawBandwidth {
  const bandwidth = canonicalRuntimeKeys(raw);
  if (!validateRuntimeBandwidth(bandwidth)) {
    throw schemaError(validateRuntimeBandwidth.errors, runtimeBandwidthSchema, { prefix: RUNTIME_PREFIX, root: 'runtimeConfig.bandwidth' });
  }
  return bandwidth as RawBandwidth;
}

/** What the runtime asks for one direction, burst clamped (a notice says so: it is expected). */
export function runtimeLimit(bandwidth: RawBandwidth, direction: Direction, maxBurst: number | undefined, notices: string[]): FlatLimit | undefined {
  const limit = referenceLimit(bandwidth, direction, RUNTIME_PREFIX);
  if (!limit) return undefined;
  const clamp = maxBurst ?? Math.max(Math.ceil((limit.rate / 8) * RUNTIME_BURST_SECONDS), RUNTIME_BURST_FLOOR_BYTES);
  const ceiling = Math.min(clamp, longestBurst(limit.rate));
  if (limit.burst <= ceiling) return limit;
  notices.push(
    `${RUNTIME_PREFIX}${direction}Burst of ${limit.burst} bytes clamped to ${ceiling} bytes so a new pod cannot burst far past its rate (set maxBurst to change)`,
  );
  return { rate: limit.rate, burst: ceiling };
}
