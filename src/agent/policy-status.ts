/**
 * A BandwidthPolicy's status, written by every node agent without overwriting the others: each
 * writes only its own entry of status.nodes (its node's selected and shaped pods, the generation
 * they describe, what keeps it from applying the policy) and the totals over all entries, on the
 * object as its watch last delivered it, under that resourceVersion. A write that lost a race gets
 * 409 Conflict and is made again once the newer object has arrived. Writes are coalesced (at most
 * one per policy per period) and skipped when the entry already says it: a resync writes nothing,
 * and another agent's write is not answered with one. The entries of nodes the cluster no longer
 * has (node-roster.ts) are dropped with the write, or by one of their own.
 */
import type { Logger } from '../log.ts';
import type { AgentMetrics } from './metrics.ts';
import type { NodeRoster } from './node-roster.ts';
import type { NodeStatus, PolicyApi, PolicyStatus, PolicyView } from './policy-api.ts';

/** What this node says of a policy; undefined: nothing (it selects no pod here and nothing is wrong). */
export type OwnEntry = Omit<NodeStatus, 'node' | 'updatedAt'> & { readonly selector: string };

export class PolicyStatusWriter {
  private readonly api: Pick<PolicyApi, 'writeStatus'>;
  private readonly node: string;
  private readonly view: (key: string) => PolicyView | undefined;
  private readonly entryOf: (key: string) => OwnEntry | undefined;
  private readonly roster: Pick<NodeRoster, 'gone'>;
  private readonly periodMs: number;
  private readonly metrics: AgentMetrics;
  private readonly log: Logger;
  private readonly dirty = new Set<string>();
  /** The resourceVersion a write was made on, per policy, until the watch brings the written object. */
  private readonly awaiting = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** Status writes made (for tests and the bench). */
  writes = 0;

  constructor(
    api: Pick<PolicyApi, 'writeStatus'>,
    node: string,
    view: (key: string) => PolicyView | undefined,
    entryOf: (key: string) => OwnEntry | undefined,
    roster: Pick<NodeRoster, 'gone'>,
    periodMs: number,
    metrics: AgentMetrics,
    log: Logger,
  ) {
    this.api = api;
    this.node = node;
    this.view = view;
    this.entryOf = entryOf;
    this.roster = roster;
    this.periodMs = periodMs;
    this.metrics = metrics;
    this.log = log;
  }

  /** The policy's entry may have to be written. */
  touch(key: string): void {
    this.dirty.add(key);
  }

  start(): void {
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.flush().finally(() => this.schedule());
    }, this.periodMs);
  }

  /** Writes every dirty policy's entry that differs from what its status says. */
  async flush(): Promise<void> {
    for (const key of [...this.dirty]) {
      const view = this.view(key);
      if (!view) {
        this.dirty.delete(key);
        this.awaiting.delete(key);
        continue;
      }
      // our last write has not come back through the watch yet: compare with it once it has
      if (this.awaiting.get(key) === view.resourceVersion) continue;
      this.awaiting.delete(key);
      const gone = await this.roster.gone((view.status?.nodes ?? []).filter((entry) => entry.node !== this.node));
      const status = this.statusWith(view, this.entryOf(key), gone);
      if (!status) {
        this.dirty.delete(key);
        continue;
      }
      try {
        const result = await this.api.writeStatus(view, status);
        this.writes++;
        if (result === 'conflict') continue; // written again on the newer object
        this.dirty.delete(key);
        if (result === 'written') this.awaiting.set(key, view.resourceVersion);
        if (result === 'written' && gone.size) this.log.info({ policy: key, nodes: [...gone] }, 'dropped the status entries of nodes the cluster no longer has');
      } catch (error) {
        this.metrics.errors.inc({ kind: 'status' });
        this.log.warn({ policy: key, error: (error as Error).message.split('\n')[0] }, 'could not write the status of the BandwidthPolicy; trying again');
      }
    }
  }

  /** The status with this node's entry replaced by `own` and the `gone` nodes' dropped; undefined when it says that already. */
  private statusWith(view: PolicyView, own: OwnEntry | undefined, gone: ReadonlySet<string>): PolicyStatus | undefined {
    const nodes = view.status?.nodes ?? [];
    const mine = nodes.find((entry) => entry.node === this.node);
    const { selector, ...fields } = own ?? { selector: view.status?.selector ?? '' };
    const same = own ? mine !== undefined && sameEntry(mine, fields as Omit<NodeStatus, 'node' | 'updatedAt'>) : mine === undefined;
    if (same && !gone.size && (!own || view.status?.selector === selector)) return undefined;
    const entries = [...nodes.filter((entry) => entry.node !== this.node && !gone.has(entry.node)), ...(own ? [{ node: this.node, ...fields, updatedAt: new Date().toISOString() } as NodeStatus] : [])].sort((a, b) =>
      a.node < b.node ? -1 : a.node > b.node ? 1 : 0,
    );
    return {
      selector,
      selectedPods: entries.reduce((sum, entry) => sum + entry.selectedPods, 0),
      shapedPods: entries.reduce((sum, entry) => sum + entry.shapedPods, 0),
      nodeCount: entries.filter((entry) => entry.selectedPods > 0).length,
      nodes: entries,
    };
  }
}

function sameEntry(a: NodeStatus, b: Omit<NodeStatus, 'node' | 'updatedAt'>): boolean {
  return a.observedGeneration === b.observedGeneration && a.selectedPods === b.selectedPods && a.shapedPods === b.shapedPods && (a.problem ?? '') === (b.problem ?? '');
}
