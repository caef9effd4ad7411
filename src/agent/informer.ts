/**
 * A cache of one kind of object kept current by a Reflector (client-go's shared informer, in the
 * part the agent uses), generic over the object: pods today, and any other kind listed and watched
 * the same way. Handlers hear only keys, and only when an object came, went, or changed in what the
 * cache keeps: a worker reads the object itself from the cache when it gets to the key, so it
 * always works on the latest state, however many events came meanwhile.
 */
import type { Logger } from '../log.ts';
import type { ListWatch } from './kube.ts';
import type { AgentMetrics } from './metrics.ts';
import { Reflector, type ReflectorOptions, type ReflectorState, type ServerIdentity } from './reflector.ts';

interface Entry<T> {
  readonly item: T;
  /** When the cache last saw it change (ms since the epoch). */
  readonly changedAt: number;
}

export class Informer<T> {
  private readonly keyOf: (item: T) => string;
  private readonly store = new Map<string, Entry<T>>();
  private readonly handlers: Array<(key: string) => void> = [];
  private readonly reflector: Reflector<T>;
  private readonly syncedWaiters: Array<() => void> = [];

  constructor(source: ListWatch<T>, server: ServerIdentity, options: ReflectorOptions, keyOf: (item: T) => string, metrics: AgentMetrics, log: Logger) {
    this.keyOf = keyOf;
    this.reflector = new Reflector(
      source,
      server,
      options,
      {
        replace: (items) => {
          const listed = new Set(items.map(keyOf));
          for (const key of [...this.store.keys()]) if (!listed.has(key)) this.delete(key);
          for (const item of items) this.upsert(item);
          for (const resolve of this.syncedWaiters.splice(0)) resolve();
        },
        upsert: (item) => this.upsert(item),
        remove: (item) => this.delete(keyOf(item)),
      },
      metrics,
      log,
    );
  }

  /** `handler` hears the key of every object added, changed or deleted (client-go's event handlers, keys only). */
  onChange(handler: (key: string) => void): void {
    this.handlers.push(handler);
  }

  get(key: string): T | undefined {
    return this.store.get(key)?.item;
  }

  /** When the object last changed in the cache (ms since the epoch). */
  changedAt(key: string): number | undefined {
    return this.store.get(key)?.changedAt;
  }

  keys(): string[] {
    return [...this.store.keys()];
  }

  get state(): ReflectorState {
    return this.reflector.state;
  }

  get hasSynced(): boolean {
    return this.reflector.hasSynced;
  }

  /** Resolves once the first list is in the cache. */
  synced(): Promise<void> {
    if (this.hasSynced) return Promise.resolve();
    return new Promise((resolve) => this.syncedWaiters.push(resolve));
  }

  start(): void {
    this.reflector.start();
  }

  async stop(): Promise<void> {
    await this.reflector.stop();
    // whoever waits for a sync that will not come goes on (and finds the agent stopping)
    for (const resolve of this.syncedWaiters.splice(0)) resolve();
  }

  private upsert(item: T): void {
    const key = this.keyOf(item);
    const known = this.store.get(key);
    if (known && JSON.stringify(known.item) === JSON.stringify(item)) return;
    this.store.set(key, { item, changedAt: Date.now() });
    this.notify(key);
  }

  private delete(key: string): void {
    if (!this.store.delete(key)) return;
    this.notify(key);
  }

  private notify(key: string): void {
    for (const handler of this.handlers) handler(key);
  }
}
