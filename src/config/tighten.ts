/**
 * The one rule by which inputs combine: a policy fitted under a limit, the lower value winning.
 * Used for a pod's annotated tree under the admin's cap and for any policy under the runtime's
 * flat limit; it takes plain values, so the node agent and the operator reuse it as is.
 *
 * - ceil: the lower of the two; class ceils are clipped to it.
 * - rate: the lower of the two (and never above the ceil); when the classes' guaranteed rates add
 *   up to more, they are scaled down in proportion (never below the lowest shapeable rate).
 * - bursts: an explicit burst of the limit caps every explicit burst of the policy. A policy that
 *   sets no burst of its own takes the limit's when the limit lowers its ceil (the bucket goes with
 *   the ceil); otherwise it keeps the planner's default at its own, lower, ceil. A one-class
 *   direction's class follows the direction's bucket. No bucket exceeds what tc can hold.
 */
import { longestBurst } from './bursts.ts';
import type { ClassPolicy, DirectionPolicy } from './policy.ts';
import { formatRate, LIMITS } from './units.ts';

/** What a policy is fitted under: the admin's cap (a DirectionPolicy fits) or a flat limit (rate = ceil). */
export interface Limit {
  readonly rate: number;
  readonly ceil: number;
  /** Bytes. */
  readonly burst?: number;
}

export interface Fitted {
  readonly policy: DirectionPolicy;
  /** What the limit lowered, in words ("ceil 80mbit -> 50mbit"); empty when the policy already fitted. */
  readonly lowered: readonly string[];
}

/** `policy` must be a shaped tree (no unshaped subnet class: subnets are added after fitting). */
export function fitUnder(policy: DirectionPolicy, limit: Limit): Fitted {
  const lowered: string[] = [];
  const ceil = Math.min(policy.ceil, limit.ceil);
  const rate = Math.min(policy.rate, limit.rate, ceil);
  if (ceil < policy.ceil) lowered.push(`ceil ${formatRate(policy.ceil)} -> ${formatRate(ceil)}`);
  if (rate < policy.rate) lowered.push(`rate ${formatRate(policy.rate)} -> ${formatRate(rate)}`);

  const guaranteed = policy.classes.reduce((sum, c) => sum + c.rate, 0);
  const scale = guaranteed > rate ? rate / guaranteed : 1;
  if (scale < 1) lowered.push(`class rates scaled to ${Math.floor(scale * 1000) / 10}%`);

  const burst = fittedBurst(policy.burst, limit.burst, ceil < policy.ceil, ceil);
  if (policy.burst !== undefined && burst !== undefined && burst < policy.burst) lowered.push(`burst ${policy.burst} -> ${burst} bytes`);
  const single = policy.classes.length === 1;
  let clipped = 0;
  const classes = policy.classes.map((c): ClassPolicy => {
    const classRate = scale < 1 ? Math.max(LIMITS.minRateBitsPerSecond, Math.floor(c.rate * scale)) : c.rate;
    const own = single ? (c.burst === undefined ? burst : Math.min(c.burst, burst ?? Infinity)) : c.burst;
    const classBurst = own === undefined ? undefined : Math.min(own, limit.burst ?? Infinity, longestBurst(classRate));
    if (c.burst !== undefined && classBurst !== undefined && classBurst < c.burst) clipped++;
    const { burst: _, ...rest } = c;
    return { ...rest, rate: classRate, ceil: Math.min(c.ceil, ceil), ...(classBurst === undefined ? {} : { burst: classBurst }) };
  });
  if (clipped) lowered.push(`${clipped} class burst${clipped > 1 ? 's' : ''} clipped`);
  const { burst: _, ...rest } = policy;
  return { policy: { ...rest, rate, ceil, classes, ...(burst === undefined ? {} : { burst }) }, lowered };
}

function fittedBurst(own: number | undefined, limit: number | undefined, limitSetsCeil: boolean, ceil: number): number | undefined {
  const burst = own !== undefined ? Math.min(own, limit ?? Infinity) : limitSetsCeil ? limit : undefined;
  return burst === undefined ? undefined : Math.min(burst, longestBurst(ceil));
}
