import { describe, expect, it } from 'vitest';
import type { DirectionPolicy } from '../../src/config/policy.ts';
import { fitUnder } from '../../src/config/tighten.ts';
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

describe('fitUnder: a policy under a limit, the lower value winning', () => {
  it('leaves a policy that fits as it is, and says nothing was lowered', () => {
    expect(fitUnder(tree, { rate: 100e6, ceil: 100e6 })).toEqual({ policy: tree, lowered: [] });
  });

  it('lowers the ceil and clips class ceils to it', () => {
    const { policy, lowered } = fitUnder(tree, { rate: 50e6, ceil: 60e6 });
    expect(policy).toMatchObject({ rate: 50e6, ceil: 60e6 });
    expect(policy.classes.map((c) => c.ceil)).toEqual([60e6, 10e6]);
    expect(lowered).toEqual(['ceil 80mbit -> 60mbit']);
  });

  it('scales class rates in proportion when they add up to more than the lowered rate', () => {
    const { policy, lowered } = fitUnder(tree, { rate: 25e6, ceil: 25e6 });
    expect(policy.classes.map((c) => [c.rate, c.ceil])).toEqual([[20e6, 25e6], [5e6, 10e6]]);
    expect(lowered).toContain('class rates scaled to 50%');
  });

  it('never scales a class below the lowest shapeable rate', () => {
    const { policy } = fitUnder(tree, { rate: 10_000, ceil: 10_000 });
    expect(policy.classes.every((c) => c.rate >= 8_000)).toBe(true);
  });

  it('lowers the rate under a cap whose ceil is higher than its rate', () => {
    const { policy } = fitUnder(tree, { rate: 20e6, ceil: 100e6 });
    expect(policy).toMatchObject({ rate: 20e6, ceil: 80e6 });
  });

  it("caps explicit bursts by the limit's burst", () => {
    const { policy, lowered } = fitUnder({ ...tree, burst: 300_000 }, { rate: 100e6, ceil: 100e6, burst: 100_000 });
    expect(policy.burst).toBe(100_000);
    expect(policy.classes[0]?.burst).toBe(100_000);
    expect(lowered).toEqual(['burst 300000 -> 100000 bytes', '1 class burst clipped']);
  });

  it("gives a policy without a burst the limit's burst only when the limit sets its ceil", () => {
    expect(fitUnder(tree, { rate: 100e6, ceil: 100e6, burst: 100_000 }).policy.burst).toBeUndefined();
    expect(fitUnder(tree, { rate: 20e6, ceil: 20e6, burst: 100_000 }).policy.burst).toBe(100_000);
  });

  it("a one-class direction's class follows the direction's bucket", () => {
    const { policy } = fitUnder(singleClassDirection(40e6, 1_000_000), { rate: 20e6, ceil: 20e6, burst: 12_500 });
    expect(policy.burst).toBe(12_500);
    expect(policy.classes[0]).toMatchObject({ rate: 20e6, ceil: 20e6, burst: 12_500 });
  });

  it('never leaves a bucket tc cannot hold at the lowered rate', () => {
    const { policy } = fitUnder({ ...tree, burst: 4_000_000 }, { rate: 8_000, ceil: 8_000 });
    expect(policy.burst).toBe(200_000); // 200 s at 8 kbit/s
    expect(policy.classes[0]?.burst).toBeLessThanOrEqual(200_000);
  });
});
