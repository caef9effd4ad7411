/**
 * Which nodes still exist, for pruning the status entries of BandwidthPolicies: a node deleted from
 * the cluster (scaled down, replaced) never writes its entry again, and without pruning its pods
 * would stay in the policy's totals forever. One agent's view of the cluster's node names, listed
 * metadata only (names, no status), only when an entry is to be judged and the view is too old for
 * it, and at most once a minute however many policies ask.
 *
 * An entry is dropped only when a list taken after it was written lacks its node (with a minute of
 * margin for the writers' clocks): a node that joined after the last list is listed again before its
 * entry can be judged, and a failed list drops nothing.
 */
import type { Logger } from '../log.ts';

/** The view is listed again when older than this, if an entry asks. */
const MAX_AGE_MS = 10 * 60_000;
/** ...but never more often than this. */
const MIN_INTERVAL_MS = 60_000;
/** How far the clocks of the entries' writers may be ahead of this agent's. */
const CLOCK_MARGIN_MS = 60_000;

export interface StatusEntryAge {
  readonly node: string;
  /** When its writer wrote it (RFC 3339). */
  readonly updatedAt: string;
}

export class NodeRoster {
  private readonly listNames: () => Promise<readonly string[]>;
  private readonly log: Logger;
  private readonly now: () => number;
  private names: ReadonlySet<string> | undefined;
  private listedAt = Number.NEGATIVE_INFINITY;
  private triedAt = Number.NEGATIVE_INFINITY;
  private listing: Promise<void> | undefined;

  constructor(listNames: () => Promise<readonly string[]>, log: Logger, now: () => number = Date.now) {
    this.listNames = listNames;
    this.log = log;
    this.now = now;
  }

  /** The nodes of `entries` (other nodes' entries) that a list taken after they were written no longer has. */
  async gone(entries: readonly StatusEntryAge[]): Promise<ReadonlySet<string>> {
    if (!entries.length) return new Set();
    const unjudged = (entry: StatusEntryAge) => !this.names?.has(entry.node) && !this.listedAfter(entry);
    if ((this.now() - this.listedAt > MAX_AGE_MS || entries.some(unjudged)) && this.now() - this.triedAt >= MIN_INTERVAL_MS) await this.list();
    const names = this.names;
    if (!names) return new Set();
    return new Set(entries.filter((entry) => !names.has(entry.node) && this.listedAfter(entry)).map((entry) => entry.node));
  }

  private listedAfter(entry: StatusEntryAge): boolean {
    const written = Date.parse(entry.updatedAt);
    // an entry whose time cannot be read is judged by the list like one written long ago
    return Number.isNaN(written) || written + CLOCK_MARGIN_MS < this.listedAt;
  }

  private list(): Promise<void> {
    this.listing ??= (async () => {
      const started = this.now();
      this.triedAt = started;
      try {
        this.names = new Set(await this.listNames());
        this.listedAt = started;
      } catch (error) {
        this.log.warn({ error: (error as Error).message.split('\n')[0] }, "could not list the cluster's nodes: the status entries of deleted nodes stay until it can");
      } finally {
        this.listing = undefined;
      }
    })();
    return this.listing;
  }
}
