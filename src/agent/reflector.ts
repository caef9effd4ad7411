/**
 * List, then watch, one kind of object for as long as the agent runs (client-go's Reflector): the
 * watch resumes from the last resourceVersion seen (an event's or a bookmark's) whenever the server
 * ends it; a 410 Gone (history compacted) means a fresh list; any other failure waits a capped
 * exponential back-off first. A watch that stays silent past the server's own timeout is taken as
 * dead and reopened. Each list hands over the whole set, each event one object.
 *
 * A failure is logged once when it starts (with the server and where the credentials came from),
 * again only when the error changes, and its end is logged too: an API server that is down or
 * unreachable shows as one clear line, not one line per retry.
 */
import type { Logger } from '../log.ts';
import { Backoff, type BackoffSettings } from './backoff.ts';
import { httpStatusOf, type ListWatch, type WatchEvent } from './kube.ts';
import type { AgentMetrics, ErrorKind, RestartReason } from './metrics.ts';

export interface ReflectorHandlers<T> {
  /** After every list: every object (one missing here is gone). */
  replace(items: readonly T[]): void;
  upsert(item: T): void;
  remove(item: T): void;
}

export interface ReflectorOptions {
  readonly relistBackoff: BackoffSettings;
  readonly watchTimeoutSeconds: number;
}

/** Where the API server is and where the credentials came from, for the failure's log line. */
export interface ServerIdentity {
  readonly server: string;
  readonly source: string;
}

/** starting: no watch established yet; watching: one is open; retrying: the last attempt failed. */
export type ReflectorState = 'starting' | 'watching' | 'retrying';

interface WatchEnd {
  readonly reason: RestartReason;
  readonly error?: unknown;
  readonly errorKind?: ErrorKind;
  /** The server accepted the watch (HTTP 200). */
  readonly established: boolean;
  readonly lastedMs: number;
}

/** A watch shorter than this that ends without error still waits before the next one: no busy loop. */
const SHORT_WATCH_MS = 1000;
/** A watch silent for this many times the timeout the server was asked to end it after is taken as dead. */
const STALL_FACTOR = 1.5;

export class Reflector<T> {
  private readonly source: ListWatch<T>;
  private readonly server: ServerIdentity;
  private readonly options: ReflectorOptions;
  private readonly handlers: ReflectorHandlers<T>;
  private readonly metrics: AgentMetrics;
  private readonly log: Logger;
  private stateNow: ReflectorState = 'starting';
  private listed = false;
  private resourceVersion: string | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;
  /** Ends what the loop is waiting on: the open watch or the back-off sleep. */
  private interrupt: (() => void) | undefined;
  /** The failure being retried (its first line), and how many attempts failed in a row. */
  private failing: { message: string; count: number } | undefined;

  constructor(source: ListWatch<T>, server: ServerIdentity, options: ReflectorOptions, handlers: ReflectorHandlers<T>, metrics: AgentMetrics, log: Logger) {
    this.source = source;
    this.server = server;
    this.options = options;
    this.handlers = handlers;
    this.metrics = metrics;
    this.log = log;
  }

  get state(): ReflectorState {
    return this.stateNow;
  }

  /** The first list has been handed over (client-go's HasSynced). */
  get hasSynced(): boolean {
    return this.listed;
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.interrupt?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    const backoff = new Backoff(this.options.relistBackoff);
    while (!this.stopped) {
      const end = await this.listAndWatch();
      if (this.stopped) break;
      if (end.established && end.lastedMs >= SHORT_WATCH_MS) backoff.reset();
      if (end.reason === 'expired') {
        this.resourceVersion = undefined;
        this.log.info({ server: this.server.server }, `watch history expired (410 Gone): listing ${this.source.what} again`);
      }
      let waitMs = 0;
      if (end.reason === 'error') {
        this.stateNow = 'retrying';
        this.metrics.errors.inc({ kind: end.errorKind ?? 'watch' });
        waitMs = backoff.next();
        this.failed(end, waitMs);
      } else if (!end.established || end.lastedMs < SHORT_WATCH_MS) {
        waitMs = backoff.next();
      }
      this.metrics.watchRestarts.inc({ reason: end.reason });
      if (waitMs > 0) await this.sleep(waitMs);
    }
  }

  private failed(end: WatchEnd, retryInMs: number): void {
    const message = describe(end.error);
    const doing = `${end.errorKind === 'list' ? 'listing' : 'watching'} ${this.source.what}`;
    if (this.failing?.message === message) {
      this.failing.count += 1;
      this.log.debug({ server: this.server.server, error: message, failures: this.failing.count, retryInMs }, `${doing} failed again`);
      return;
    }
    this.failing = { message, count: (this.failing?.count ?? 0) + 1 };
    this.log.warn(
      { server: this.server.server, credentials: this.server.source, error: message, retryInMs, retryUpToMs: this.options.relistBackoff.maxSeconds * 1000 },
      `${doing} failed: cannot use the API server ${this.server.server} (credentials: ${this.server.source}): ${message}; ` +
        `retrying with back-off, logged again when the error changes or it works`,
    );
  }

  private recovered(): void {
    if (!this.failing) return;
    this.log.info({ server: this.server.server, failures: this.failing.count }, `the API server answers again after ${this.failing.count} failed attempts`);
    this.failing = undefined;
  }

  private async listAndWatch(): Promise<WatchEnd> {
    if (this.resourceVersion === undefined) {
      try {
        const list = await this.source.list();
        this.resourceVersion = list.resourceVersion;
        this.handlers.replace(list.items);
        this.listed = true;
      } catch (error) {
        return { reason: 'error', error, errorKind: 'list', established: false, lastedMs: 0 };
      }
    }
    if (this.stopped) return { reason: 'closed', established: false, lastedMs: 0 };
    return this.watchFrom(this.resourceVersion);
  }

  private watchFrom(resourceVersion: string): Promise<WatchEnd> {
    const started = Date.now();
    const stallMs = this.options.watchTimeoutSeconds * STALL_FACTOR * 1000;
    return new Promise((resolve) => {
      let settled = false;
      let established = false;
      let endWatch: (() => void) | undefined;
      let stall: NodeJS.Timeout | undefined;
      const finish = (reason: RestartReason, error?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(stall);
        this.interrupt = undefined;
        endWatch?.();
        resolve({ reason, ...(error !== undefined ? { error } : {}), established, lastedMs: Date.now() - started });
      };
      const armStallTimer = () => {
        clearTimeout(stall);
        stall = setTimeout(() => finish('stalled'), stallMs);
      };
      const onEvent = (event: WatchEvent<T>) => {
        if (settled) return;
        armStallTimer();
        if (event.type === 'ERROR') {
          // the server ends the watch after an ERROR event; not waiting for it costs nothing
          finish(event.code === 410 ? 'expired' : 'error', event.code === 410 ? undefined : new Error(`watch error event: ${event.message}`));
          return;
        }
        this.resourceVersion = event.resourceVersion || this.resourceVersion;
        if (event.type === 'DELETED') this.handlers.remove(event.object);
        else if (event.type !== 'BOOKMARK') this.handlers.upsert(event.object);
      };
      const onDone = (error: unknown) => {
        if (!error) finish('closed');
        else if (httpStatusOf(error) === 410) finish('expired');
        else finish('error', error);
      };
      this.interrupt = () => finish('closed');
      armStallTimer();
      this.source.watch(resourceVersion, this.options.watchTimeoutSeconds, onEvent, onDone).then(
        (end) => {
          endWatch = end;
          if (settled) {
            end();
            return;
          }
          established = true;
          this.recovered();
          if (this.stateNow !== 'watching') this.log.info({ server: this.server.server, resourceVersion }, `watching ${this.source.what}`);
          this.stateNow = 'watching';
        },
        (error: unknown) => finish('error', error),
      );
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.interrupt = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.interrupt = done;
    });
  }
}

function describe(error: unknown): string {
  const status = httpStatusOf(error);
  const cause = (error as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  let message = error instanceof Error ? error.message : String(error);
  // fetch's "fetch failed" says nothing: the cause (ECONNREFUSED, a TLS error) does
  if (cause?.message && !message.includes(cause.message)) message = `${message}: ${cause.code ? `${cause.code} ` : ''}${cause.message}`;
  return status !== undefined ? `HTTP ${status}: ${message.split('\n')[0]}` : message.split('\n')[0]!;
}
