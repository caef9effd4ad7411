/** The agent's work queue as client-go's behaves: one entry per key, never a key twice at once, dirty keys run again, per-key back-off. */
import { describe, expect, it } from 'vitest';
import { ItemExponentialFailureRateLimiter, RateLimitingQueue } from '../../src/agent/workqueue.ts';

const queue = () => new RateLimitingQueue(new ItemExponentialFailureRateLimiter(10, 1000));

describe('the rate-limited work queue', () => {
  it('holds a key once however often it is added, in the order keys came', async () => {
    const q = queue();
    for (const key of ['a', 'b', 'a', 'c', 'b']) q.add(key);
    expect(q.length).toBe(3);
    expect([await q.get(), await q.get(), await q.get()]).toEqual(['a', 'b', 'c']);
  });

  it('never hands out a key being processed; added meanwhile, it comes back once it is done', async () => {
    const q = queue();
    q.add('a');
    const first = await q.get();
    q.add('a');
    q.add('a');
    q.add('b');
    expect(await q.get()).toBe('b'); // not a: a is being processed
    q.done('b');
    let second: string | undefined;
    void q.get().then((key) => (second = key));
    await Promise.resolve();
    expect(second).toBeUndefined();
    q.done(first!);
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(second).toBe('a');
    q.done('a');
    expect(q.length).toBe(0);
  });

  it('delays a failed key exponentially per key, capped, and starts over after forget', () => {
    const limiter = new ItemExponentialFailureRateLimiter(5, 100);
    expect([1, 2, 3, 4, 5, 6, 7].map(() => limiter.when('a'))).toEqual([5, 10, 20, 40, 80, 100, 100]);
    expect(limiter.when('b')).toBe(5);
    expect(limiter.numRequeues('a')).toBe(7);
    limiter.forget('a');
    expect(limiter.when('a')).toBe(5);
  });

  it('adds a rate-limited key after its delay, and an earlier pending add wins', async () => {
    const q = queue();
    const started = Date.now();
    q.addRateLimited('a'); // 10 ms
    q.addRateLimited('a'); // 20 ms: the 10 ms one stays
    expect(q.length).toBe(0);
    expect(await q.get()).toBe('a');
    expect(Date.now() - started).toBeLessThan(19);
  });

  it('hands workers undefined once shut down, after the keys being processed are done', async () => {
    const q = queue();
    q.add('a');
    const key = await q.get();
    const waiting = q.get();
    q.addAfter('b', 50);
    q.shutDown();
    expect(await waiting).toBeUndefined();
    const idle = q.idle();
    q.done(key!);
    await idle;
    expect(await q.get()).toBeUndefined();
  });
});
