/**
 * List, then watch, the pods of this node, for as long as the agent runs: the watch resumes from
 * the last resourceVersion seen (an event's or a bookmark's) whenever the server ends it; a 410
 * Gone (history compacted) means a fresh list; any other failure waits a capped exponential
 * back-off first. A watch that stays silent past the server's own timeout is taken as dead and
 * reopened. Each list hands over the whole set of pods, each event one pod.
 */
import type { Logger } from '../log.ts';
import { Backoff, type BackoffSettings } from './backoff.ts';
import { httpStatusOf, type PodApi, type WatchEvent } from './kube.ts';
import type { AgentMetrics, ErrorKind, RestartReason } from './metrics.ts';
import type { PodView } from './pods.ts';

export interface PodWatchHandlers {
  /** After every list: the node's pods, all of them (a pod missing here is gone). */
  replace(pods: readonly PodView[]): void;
  upsert(pod: PodView): void;
  remove(pod: PodView): void;
}

export interface PodWatchOptions {
  readonly relistBackoff: BackoffSettings;
  readonly watchTimeoutSeconds: number;
}

/** starting: no watch established yet; watching: one is open; retrying: the last attempt failed. */
export type WatchState = 'starting' | 'watching' | 'retrying';

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

export class PodWatch {
  private readonly api: PodApi;
  private readonly options: PodWatchOptions;
  private readonly handlers: PodWatchHandlers;
  private readonly metrics: AgentMetrics;
  private readonly log: Logger;
  private stateNow: WatchState = 'starting';
  private resourceVersion: string | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;
  /** Ends what the loop is waiting on: the open watch or the back-off sleep. */
  private interrupt: (() => void) | undefined;

  constructor(api: PodApi, options: PodWatchOptions, handlers: PodWatchHandlers, metrics: AgentMetrics, log: Logger) {
    this.api = api;
    this.options = options;
    this.handlers = handlers;
    this.metrics = metrics;
    this.log = log;
  }

  get state(): WatchState {
    return this.stateNow;
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
        this.log.info({ server: this.api.server }, 'watch history expired (410 Gone): listing the pods again');
      }
      let waitMs = 0;
      if (end.reason === 'error') {
        this.stateNow = 'retrying';
        this.metrics.errors.inc({ kind: end.errorKind ?? 'watch' });
        waitMs = backoff.next();
        this.log.warn(
          { server: this.api.server, error: describe(end.error), retryInMs: waitMs },
          `${end.errorKind === 'list' ? 'listing' : 'watching'} the pods failed`,
        );
      } else if (!end.established || end.lastedMs < SHORT_WATCH_MS) {
        waitMs = backoff.next();
      }
      this.metrics.watchRestarts.inc({ reason: end.reason });
      if (waitMs > 0) await this.sleep(waitMs);
    }
  }

  private async listAndWatch(): Promise<WatchEnd> {
    if (this.resourceVersion === undefined) {
      try {
        const list = await this.api.listPods();
        this.resourceVersion = list.resourceVersion;
        this.handlers.replace(list.pods);
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
      const onEvent = (event: WatchEvent) => {
        if (settled) return;
        armStallTimer();
        if (event.type === 'ERROR') {
          // the server ends the watch after an ERROR event; not waiting for it costs nothing
          finish(event.code === 410 ? 'expired' : 'error', event.code === 410 ? undefined : new Error(`watch error event: ${event.message}`));
          return;
        }
        this.resourceVersion = event.resourceVersion || this.resourceVersion;
        if (event.type === 'DELETED') this.handlers.remove(event.pod);
        else if (event.type !== 'BOOKMARK') this.handlers.upsert(event.pod);
      };
      const onDone = (error: unknown) => {
        if (!error) finish('closed');
        else if (httpStatusOf(error) === 410) finish('expired');
        else finish('error', error);
      };
      this.interrupt = () => finish('closed');
      armStallTimer();
      this.api.watchPods(resourceVersion, this.options.watchTimeoutSeconds, onEvent, onDone).then(
        (end) => {
          endWatch = end;
          if (settled) {
            end();
            return;
          }
          established = true;
          if (this.stateNow !== 'watching') this.log.info({ server: this.api.server, resourceVersion }, 'watching the pods of this node');
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
  const message = error instanceof Error ? error.message : String(error);
  return status !== undefined ? `HTTP ${status}: ${message.split('\n')[0]}` : message.split('\n')[0]!;
}
