/**
 * client-go's rate-limited work queue, in the part the agent uses. A key is queued at most once
 * (a burst of changes to one pod while it waits is one pass over its latest state); a key being
 * processed is never handed to a second worker: added meanwhile, it is marked dirty and queued again
 * when its worker is done. A failed key comes back after a per-key exponential delay
 * (`addRateLimited`, as ItemExponentialFailureRateLimiter), and `forget` resets its count on success.
 */

/** Per-key exponential back-off: base * 2^failures, capped (client-go's ItemExponentialFailureRateLimiter). */
export class ItemExponentialFailureRateLimiter {
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly failures = new Map<string, number>();

  constructor(baseMs: number, maxMs: number) {
    this.baseMs = baseMs;
    this.maxMs = maxMs;
  }

  /** The wait before the key's next try; counts one more failure. */
  when(key: string): number {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    return Math.min(this.baseMs * 2 ** Math.min(failures, 40), this.maxMs);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }
}

export class RateLimitingQueue {
  private readonly limiter: ItemExponentialFailureRateLimiter;
  /** Keys waiting for a worker, in the order they came (a Set keeps insertion order). */
  private readonly queue = new Set<string>();
  /** Keys to process: queued, or changed while being processed. */
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  /** Keys waiting out a delay, and their timers. */
  private readonly delayed = new Map<string, { readonly at: number; readonly timer: NodeJS.Timeout }>();
  /** Workers blocked in get(). */
  private readonly waiters: Array<(key: string | undefined) => void> = [];
  private idleWaiters: Array<() => void> = [];
  private shuttingDown = false;

  constructor(limiter: ItemExponentialFailureRateLimiter) {
    this.limiter = limiter;
  }

  /** Keys queued or being processed (not those waiting out a delay). */
  get length(): number {
    return this.queue.size + this.processing.size;
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    const waiter = this.waiters.shift();
    if (waiter) {
      this.take(key);
      waiter(key);
    } else {
      this.queue.add(key);
    }
  }

  /** Adds the key after `ms`; an earlier pending add of the same key wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + ms;
    const pending = this.delayed.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.delayed.set(key, { at, timer });
  }

  /** Adds the key after its back-off: a failed key's next try. */
  addRateLimited(key: string): void {
    this.addAfter(key, this.limiter.when(key));
  }

  /** The key succeeded: its back-off starts over. */
  forget(key: string): void {
    this.limiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.limiter.numRequeues(key);
  }

  /** The next key to process, once there is one; undefined once the queue is shut down. */
  get(): Promise<string | undefined> {
    const [next] = this.queue;
    if (next !== undefined) {
      this.queue.delete(next);
      this.take(next);
      return Promise.resolve(next);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The worker is done with the key: if it was added meanwhile, it is queued again. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key)) {
      this.dirty.delete(key);
      this.add(key);
    }
    if (this.length === 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  /** Resolves once nothing is queued or being processed (delayed keys do not count). */
  idle(): Promise<void> {
    if (this.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** No more keys are handed out; workers waiting in get() get undefined. Delayed keys are dropped. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    this.queue.clear();
    this.dirty.clear();
    for (const resolve of this.waiters.splice(0)) resolve(undefined);
    if (this.processing.size === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private take(key: string): void {
    this.dirty.delete(key);
    this.processing.add(key);
  }
}
