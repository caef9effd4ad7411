/**
 * Workers over a rate-limited queue (client-go's controller loop): each takes a key, reconciles it,
 * and forgets it on success or queues it again after its back-off on failure. The queue never hands
 * one key to two workers, so a slow key (a hung tc run, a lock held elsewhere) holds one worker and
 * the others go on with other keys. Workers start once the caches are synced: a worker never acts on
 * a partial view of the node.
 */
import type { Logger } from '../log.ts';
import type { AgentMetrics } from './metrics.ts';
import type { RateLimitingQueue } from './workqueue.ts';

export class Controller {
  private readonly queue: RateLimitingQueue;
  private readonly reconcile: (key: string) => Promise<void>;
  private readonly metrics: AgentMetrics;
  private readonly log: Logger;
  private workers: Promise<void>[] = [];

  constructor(queue: RateLimitingQueue, reconcile: (key: string) => Promise<void>, metrics: AgentMetrics, log: Logger) {
    this.queue = queue;
    this.reconcile = reconcile;
    this.metrics = metrics;
    this.log = log;
  }

  /** Starts `count` workers once `synced` resolves. */
  async run(count: number, synced: Promise<void>): Promise<void> {
    await synced;
    this.workers = Array.from({ length: count }, () => this.worker());
  }

  /** Hands out no more keys and waits for the keys being worked on. */
  async stop(): Promise<void> {
    this.queue.shutDown();
    await Promise.all(this.workers);
  }

  private async worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      this.metrics.queueDepth.set(this.queue.length);
      try {
        await this.reconcile(key);
        this.queue.forget(key);
      } catch (error) {
        this.metrics.retries.inc();
        this.log.warn({ key, error: (error as Error).message, failures: this.queue.numRequeues(key) + 1 }, 'queued again after a failure, with back-off');
        this.queue.addRateLimited(key);
      } finally {
        this.queue.done(key);
        this.metrics.queueDepth.set(this.queue.length);
      }
    }
  }
}
