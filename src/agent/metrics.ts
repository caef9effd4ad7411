/**
 * The agent's own Prometheus metrics, next to the attachments' per-class families (src/metrics).
 * Label values are fixed sets, so the series count stays small whatever happens on the node.
 */
import { Counter, Histogram, type Registry } from 'prom-client';

/** What one attempt to apply a pod's annotations to one attachment came to. */
export type ReconcileResult = 'applied' | 'unchanged' | 'invalid' | 'not_admitted' | 'failed';
/** Where an error happened: listing or watching pods, applying, posting an Event, dropping gone records. */
export type ErrorKind = 'list' | 'watch' | 'apply' | 'event' | 'gc';
/** Why the watch was opened again: the server ended it, its history expired (410), it failed, or went silent. */
export type RestartReason = 'closed' | 'expired' | 'error' | 'stalled';

export class AgentMetrics {
  readonly reconciles: Counter<'result'>;
  readonly errors: Counter<'kind'>;
  readonly applySeconds: Histogram;
  readonly watchRestarts: Counter<'reason'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.reconciles = new Counter({
      name: 'tcqos_agent_reconciles_total',
      help: "Attempts to apply a pod's shaping annotations to one of its attachments, by result",
      labelNames: ['result'],
      registers,
    });
    this.errors = new Counter({ name: 'tcqos_agent_errors_total', help: 'Errors of the agent, by where they happened', labelNames: ['kind'], registers });
    this.applySeconds = new Histogram({
      name: 'tcqos_agent_apply_seconds',
      help: "Time to apply a pod's annotations to one attachment (derive the policy, compare, reshape live)",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.watchRestarts = new Counter({
      name: 'tcqos_agent_watch_restarts_total',
      help: "Times the watch on the node's pods was opened again, by reason",
      labelNames: ['reason'],
      registers,
    });
    // every label value shows from the first scrape (at 0), so rate() and alerts work before the first event
    for (const result of ['applied', 'unchanged', 'invalid', 'not_admitted', 'failed'] satisfies ReconcileResult[]) this.reconciles.inc({ result }, 0);
    for (const kind of ['list', 'watch', 'apply', 'event', 'gc'] satisfies ErrorKind[]) this.errors.inc({ kind }, 0);
    for (const reason of ['closed', 'expired', 'error', 'stalled'] satisfies RestartReason[]) this.watchRestarts.inc({ reason }, 0);
  }
}
