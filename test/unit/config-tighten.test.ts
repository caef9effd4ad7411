import { describe, expect, it } from 'vitest';
import type { ClassPolicy, DirectionPolicy } from '../../src/config/policy.ts';
import { capGuarantee, fitUnder } from '../../src/config/tighten.ts';
import { singleClassDirection } from '../../src/config/tree.ts';

const tree: DirectionPolicy = {
  rate: 50e6,
  ceil: 80e6,
  classes: [
    { name: 'db', rate: 40e6, ceil: 80e6, priority: 1, unshaped: false, burst: 200_000 },
    { name: 'rest', rate: 10e6, ceil: 10e6, priority: 0, unshaped: false },
  ],
  defaultClass: 'rest',
  rules: [],
};

/** `count` classes of `rate` each, borrowing up to `ceil`, each with `burst` bytes. */
function classes(count: number, rate: number, ceil: number, burst?: number): ClassPolicy[] {
  return Array.from({ length: count }, (_, i) => ({ name: `c${i}`, rate, ceil, priority: 0, unshaped: false, ...(burst ? { burst } : {}) }));
}

function manyClasses(count: number, rate: number, ceil: number, burst?: number): DirectionPolicy {
  return { rate: count * rate, ceil, classes: classes(count, rate, ceil, burst), defaultClass: 'c0', rules: [] };
}

/** What the tree may send above its ceil at most: the root's bucket when a class can borrow, and every class's. */
function buckets(policy: DirectionPolicy): number {
  const borrows = policy.classes.some((c) => c.ceil > c.rate);
  return (borrows ? (policy.burst ?? 0) : 0) + policy.classes.reduce((sum, c) => sum + (c.burst ?? 0), 0);
}

const FIELD = 'egress.classes';

describe('fitUnder: a policy under a limit, the lower value winning', () => {
  it('leaves a policy that fits as it is, and says nothing was lowered', () => {
    expect(fitUnder(tree, { rate: 100e6, ceil: 100e6, burst: 400_000 }, FIELD)).toEqual({ policy: tree, lowered: [] });
  });

  it('lowers the ceil and clips class ceils to it', () => {
    const { policy, lowered } = fitUnder(tree, { rate: 50e6, ceil: 60e6, burst: 1_000_000 }, FIELD);
    expect(policy).toMatchObject({ rate: 50e6, ceil: 60e6 });
    expect(policy.classes.map((c) => c.ceil)).toEqual([60e6, 10e6]);
    expect(lowered[0]).toBe('ceil 80mbit -> 60mbit');
  });

  it('scales class rates in proportion when they add up to more than the lowered rate', () => {
    const { policy, lowered } = fitUnder(tree, { rate: 25e6, ceil: 25e6 }, FIELD);
    expect(policy.classes.map((c) => [c.rate, c.ceil])).toEqual([[20e6, 25e6], [5e6, 10e6]]);
    expect(lowered).toContain('class rates scaled to 50%');
  });

  it('holds classes at the lowest shapeable rate and lets the others share what is left, never more than the rate', () => {
    const uneven: DirectionPolicy = { ...manyClasses(4, 1e6, 10e6), classes: [...classes(3, 1e6, 10e6), { name: 'big', rate: 97e6, ceil: 100e6, priority: 0, unshaped: false }], rate: 100e6, ceil: 100e6 };
    const { policy, lowered } = fitUnder(uneven, { rate: 100_000, ceil: 100_000 }, FIELD);
    expect(policy.classes.map((c) => c.rate)).toEqual([8_000, 8_000, 8_000, 76_000]);
    expect(lowered).toContain('class rates scaled to <0.1% (3 held at 8kbit)');
  });

  it('refuses classes whose floors alone do not fit under the rate, naming the field (64 classes under 100 kbit/s)', () => {
    expect(() => fitUnder(manyClasses(64, 1e6, 1e6), { rate: 100_000, ceil: 100_000 }, 'egress.classes')).toThrow(
      /^egress\.classes: 64 classes of at least 8kbit each \(512kbit\) do not fit under 100kbit$/,
    );
    const twelve = fitUnder(manyClasses(12, 1e6, 1e6), { rate: 100_000, ceil: 100_000 }, FIELD).policy.classes.map((c) => c.rate);
    expect(twelve).toEqual(Array(12).fill(8_333));
  });

  it('lowers the rate under a cap whose ceil is higher than its rate', () => {
    const { policy } = fitUnder(tree, { rate: 20e6, ceil: 100e6 }, FIELD);
    expect(policy).toMatchObject({ rate: 20e6, ceil: 80e6 });
  });
});

describe('fitUnder: the limit\'s burst is the budget of every bucket together', () => {
  it('8 classes of 29 MiB under a 10 Mbit/s limit of 100 KB: the buckets add up to 100 KB', () => {
    const greedy = manyClasses(8, 1.25e6, 10e6, 29 * 2 ** 20);
    const { policy, lowered } = fitUnder(greedy, { rate: 10e6, ceil: 10e6, burst: 100_000 }, FIELD);
    expect(buckets(policy)).toBeLessThanOrEqual(100_000);
    expect(policy.classes.map((c) => c.burst)).toEqual(Array(8).fill(12_500));
    expect(lowered).toEqual(['buckets scaled to <0.1% so they add up to at most the limit\'s 100000 bytes', '8 class bursts clipped']);
  });

  it('under a limit without a burst, explicit bursts are dropped: every bucket is the default', () => {
    const { policy, lowered } = fitUnder({ ...manyClasses(8, 1.25e6, 10e6, 29 * 2 ** 20), burst: 2 ** 20 }, { rate: 10e6, ceil: 10e6 }, FIELD);
    expect(policy.burst).toBeUndefined();
    expect(policy.classes.every((c) => c.burst === undefined)).toBe(true);
    expect(lowered).toEqual(['9 bursts dropped: the limit sets none, so every bucket is the default']);
  });

  it('counts the root\'s bucket when a class can borrow, and scales every bucket in proportion', () => {
    const { policy, lowered } = fitUnder({ ...tree, burst: 300_000 }, { rate: 100e6, ceil: 100e6, burst: 100_000 }, FIELD);
    expect(policy.burst).toBe(60_000);
    expect(policy.classes.map((c) => c.burst)).toEqual([40_000, undefined]);
    expect(buckets(policy)).toBe(100_000);
    expect(lowered).toEqual(['buckets scaled to 20% so they add up to at most the limit\'s 100000 bytes', 'burst 300000 -> 60000 bytes', '1 class burst clipped']);
  });

  it("gives the root the limit's burst only when the limit sets its ceil, within the budget", () => {
    expect(fitUnder(tree, { rate: 100e6, ceil: 100e6, burst: 300_000 }, FIELD).policy.burst).toBeUndefined();
    const { policy } = fitUnder(tree, { rate: 20e6, ceil: 20e6, burst: 100_000 }, FIELD);
    expect(policy.burst).toBe(33_333);
    expect(policy.classes[0]?.burst).toBe(66_666);
    expect(buckets(policy)).toBeLessThanOrEqual(100_000);
  });

  it("a one-class direction's class follows the direction's bucket, which alone counts (nothing borrows)", () => {
    const { policy } = fitUnder(singleClassDirection(40e6, 1_000_000), { rate: 20e6, ceil: 20e6, burst: 12_500 }, FIELD);
    expect(policy.burst).toBe(12_500);
    expect(policy.classes[0]).toMatchObject({ rate: 20e6, ceil: 20e6, burst: 12_500 });
  });

  it('never leaves a bucket tc cannot hold at the lowered rate', () => {
    const { policy } = fitUnder({ ...singleClassDirection(40e6), burst: 4_000_000 }, { rate: 8_000, ceil: 8_000, burst: 4_000_000 }, FIELD);
    expect(policy.burst).toBe(200_000); // 200 s at 8 kbit/s
    expect(policy.classes[0]?.burst).toBe(200_000);
  });
});

describe('capGuarantee: what one attachment may hold on an uplink', () => {
  it('lowers the guaranteed rate and scales the classes; ceils and buckets stay', () => {
    const { policy, lowered } = capGuarantee(tree, 25e6, 'uplink.maxGuaranteePerAttachment');
    expect(policy).toMatchObject({ rate: 25e6, ceil: 80e6 });
    expect(policy.classes.map((c) => [c.rate, c.ceil, c.burst])).toEqual([[20e6, 80e6, 200_000], [5e6, 10e6, undefined]]);
    expect(lowered).toEqual(['rate 50mbit -> 25mbit', 'class rates scaled to 50%']);
  });

  it('leaves a guarantee within the maximum alone', () => {
    expect(capGuarantee(tree, 50e6, 'x')).toEqual({ policy: tree, lowered: [] });
  });

  it('clamps a bucket tc could not hold at the lowered class rate', () => {
    const { policy } = capGuarantee(singleClassDirection(1e9, 4_000_000), 8_000, 'x');
    expect(policy.classes[0]).toMatchObject({ rate: 8_000, burst: 200_000 });
  });
});
