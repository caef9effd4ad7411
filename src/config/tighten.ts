/**
 * The one rule by which inputs combine: a policy fitted under a limit, the lower value winning.
 * Used for a pod's annotated tree under the admin's cap and for any policy under the runtime's
 * flat limit; it takes plain values, so the node agent and the operator reuse it as is.
 *
 * - ceil: the lower of the two; class ceils are clipped to it.
 * - rate: the lower of the two (and never above the ceil); when the classes' guaranteed rates add
 *   up to more, they are scaled down in proportion, none below the lowest shapeable rate (HTB
 *   gives every class at least that): a class scaled below it keeps the floor and the others share
 *   what is left. When the floors alone add up to more than the rate, the policy cannot fit and
 *   is refused, naming the field to blame (64 classes under 100 kbit/s sent 590 kbit/s).
 * - bursts: the limit's bucket is a budget for the whole tree. HTB lets a class with tokens send
 *   without asking its parent, so a tree can send above its ceil by its root's bucket plus every
 *   class's (8 classes of 29 MiB under a 10 Mbit/s cap sent 80 Mbit/s for 5 s). Fitted:
 *   - under a limit without a burst (its bucket is the planner's default, about 1 ms at its ceil),
 *     the policy's explicit bursts are dropped: every bucket is the planner's default;
 *   - under a limit's burst B, the explicit buckets (the policy's own; the root's is B when the
 *     limit lowers the ceil, as the bucket goes with the ceil; a one-class direction's class
 *     follows the root's) are scaled down in proportion until they add up to at most B. The
 *     root's counts only when some class can borrow (ceil above rate): nothing else draws on it.
 *   Buckets left to the planner keep its defaults (about 1 ms at their rate and a frame). No
 *   bucket exceeds what tc can hold (200 s at its rate) or is below one byte.
 */
import { longestBurst } from './bursts.ts';
import { ConfigError } from './errors.ts';
import type { ClassPolicy, DirectionPolicy } from './policy.ts';
import { formatRate, LIMITS } from './units.ts';

/** What a policy is fitted under: the admin's cap (a DirectionPolicy fits) or a flat limit (rate = ceil). */
export interface Limit {
  readonly rate: number;
  readonly ceil: number;
  /** Bytes: the budget of every bucket of the fitted tree together. */
  readonly burst?: number;
}

export interface Fitted {
  readonly policy: DirectionPolicy;
  /** What the limit lowered, in words ("ceil 80mbit -> 50mbit"); empty when the policy already fitted. */
  readonly lowered: readonly string[];
}

/**
 * `policy` must be a shaped tree (no unshaped subnet class: subnets are added after fitting).
 * @param blame the field named when the limit's rate cannot hold the classes' floors
 */
export function fitUnder(policy: DirectionPolicy, limit: Limit, blame: string): Fitted {
  const lowered: string[] = [];
  const ceil = Math.min(policy.ceil, limit.ceil);
  const rate = Math.min(policy.rate, limit.rate, ceil);
  if (ceil < policy.ceil) lowered.push(`ceil ${formatRate(policy.ceil)} -> ${formatRate(ceil)}`);
  if (rate < policy.rate) lowered.push(`rate ${formatRate(policy.rate)} -> ${formatRate(rate)}`);
  const rates = classRates(policy.classes, rate, blame, lowered);
  const classes = policy.classes.map((c, i): ClassPolicy => ({ ...c, rate: rates[i]!, ceil: Math.min(c.ceil, ceil) }));
  const fitted = fitBuckets({ ...policy, rate, ceil, classes }, limit.burst, ceil < policy.ceil, lowered);
  return { policy: fitted, lowered };
}

/**
 * The policy with its guaranteed rate at most `max` (class rates scaled as under a limit), its
 * ceils and buckets kept: what an uplink lets one attachment count for.
 */
export function capGuarantee(policy: DirectionPolicy, max: number, blame: string): Fitted {
  if (policy.rate <= max) return { policy, lowered: [] };
  const lowered = [`rate ${formatRate(policy.rate)} -> ${formatRate(max)}`];
  const rates = classRates(policy.classes, max, blame, lowered);
  const classes = policy.classes.map((c, i): ClassPolicy => withBurst(c, c.burst === undefined ? undefined : Math.min(c.burst, longestBurst(rates[i]!)), rates[i]!));
  return { policy: { ...policy, rate: max, classes }, lowered };
}

/** The classes' rates, scaled to add up to at most `rate`, none below the floor. */
function classRates(classes: readonly ClassPolicy[], rate: number, blame: string, lowered: string[]): number[] {
  const guaranteed = classes.reduce((sum, c) => sum + c.rate, 0);
  if (guaranteed <= rate) return classes.map((c) => c.rate);
  const floor = LIMITS.minRateBitsPerSecond;
  if (classes.length * floor > rate) {
    throw new ConfigError(
      blame,
      `${classes.length} classes of at least ${formatRate(floor)} each (${formatRate(classes.length * floor)}) do not fit under ${formatRate(rate)}`,
    );
  }
  // Classes that scaling would take below the floor are pinned to it; the others share the rest.
  const pinned = new Set<number>();
  for (;;) {
    const free = classes.filter((_, i) => !pinned.has(i)).reduce((sum, c) => sum + c.rate, 0);
    const left = rate - pinned.size * floor;
    const scaled = (c: ClassPolicy) => Math.floor((c.rate * left) / free);
    const below = classes.flatMap((c, i) => (!pinned.has(i) && scaled(c) < floor ? [i] : []));
    if (below.length === 0) {
      // A lone class is the direction: the direction's own rate already says it.
      if (classes.length > 1) lowered.push(`class rates scaled to ${percent(left / free)}${pinned.size ? ` (${pinned.size} held at ${formatRate(floor)})` : ''}`);
      return classes.map((c, i) => (pinned.has(i) ? floor : scaled(c)));
    }
    for (const i of below) pinned.add(i);
  }
}

/** The buckets of a tree whose rates and ceils are fitted, held to the limit's `budget` (see the top of this file). */
function fitBuckets(policy: DirectionPolicy, budget: number | undefined, limitSetsCeil: boolean, lowered: string[]): DirectionPolicy {
  if (budget === undefined) {
    const dropped = [policy.burst, ...policy.classes.map((c) => c.burst)].filter((b) => b !== undefined).length;
    if (dropped) lowered.push(`${dropped} burst${dropped > 1 ? 's' : ''} dropped: the limit sets none, so every bucket is the default`);
    return { ...withoutBurst(policy), classes: policy.classes.map((c) => withBurst(c, undefined, c.rate)) };
  }
  const single = policy.classes.length === 1;
  const rootAsk = policy.burst ?? (limitSetsCeil ? budget : undefined);
  const classAsks = policy.classes.map((c) => c.burst ?? (single ? rootAsk : undefined));
  const rootCounts = rootAsk !== undefined && policy.classes.some((c) => c.ceil > c.rate);
  const asked = (rootCounts ? rootAsk : 0) + classAsks.reduce((sum: number, ask) => sum + (ask ?? 0), 0);
  const over = asked > budget;
  if (over) lowered.push(`buckets scaled to ${percent(budget / asked)} so they add up to at most the limit's ${budget} bytes`);
  const fit = (ask: number, counts: boolean, rate: number) =>
    Math.max(1, Math.min(counts && over ? Math.floor((ask * budget) / asked) : ask, budget, longestBurst(rate)));

  const root = rootAsk === undefined ? undefined : fit(rootAsk, rootCounts, policy.ceil);
  if (policy.burst !== undefined && root !== undefined && root < policy.burst) lowered.push(`burst ${policy.burst} -> ${root} bytes`);
  let clipped = 0;
  const classes = policy.classes.map((c, i) => {
    const ask = classAsks[i];
    const burst = ask === undefined ? undefined : fit(ask, true, c.rate);
    if (c.burst !== undefined && burst !== undefined && burst < c.burst) clipped++;
    return withBurst(c, burst, c.rate);
  });
  if (clipped) lowered.push(`${clipped} class burst${clipped > 1 ? 's' : ''} clipped`);
  return { ...withoutBurst(policy), classes, ...(root === undefined ? {} : { burst: root }) };
}

function percent(share: number): string {
  return share < 0.001 ? '<0.1%' : `${Math.floor(share * 1000) / 10}%`;
}

function withBurst(c: ClassPolicy, burst: number | undefined, rate: number): ClassPolicy {
  const { burst: _, ...rest } = c;
  return { ...rest, rate, ...(burst === undefined ? {} : { burst }) };
}

function withoutBurst(policy: DirectionPolicy): DirectionPolicy {
  const { burst: _, ...rest } = policy;
  return rest;
}
