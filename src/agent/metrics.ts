/**
 * The agent's own Prometheus metrics, next to the attachments' per-class families (src/metrics).
 * Label values are fixed sets, so the series count stays small whatever happens on the node.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** What converging one attachment on its pod's desired state came to. */
export type ReconcileResult = 'applied' | 'unchanged' | 'healed' | 'invalid' | 'not_admitted' | 'failed';
/** Where an error happened: listing or watching, applying, posting an Event, dropping gone records, reading counters, writing a policy's status. */
export type ErrorKind = 'list' | 'watch' | 'apply' | 'event' | 'gc' | 'stats' | 'status';
/** Why the watch was opened again: the server ended it, its history expired (410), it failed, or went silent. */
export type RestartReason = 'closed' | 'expired' | 'error' | 'stalled';

export class AgentMetrics {
  readonly reconciles: Counter<'result'>;
  readonly errors: Counter<'kind'>;
  readonly applySeconds: Histogram;
  readonly watchRestarts: Counter<'reason'>;
  readonly driftHealed: Counter;
  readonly retries: Counter;
  readonly queueDepth: Gauge;
  readonly statsUnreadable: Gauge;
  readonly statsRefreshSeconds: Histogram;
  readonly statsAge: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.reconciles = new Counter({
      name: 'tcqos_agent_reconciles_total',
      help: "Times one attachment was converged on its pod's desired state, by result (healed: the kernel had drifted from an unchanged policy)",
      labelNames: ['result'],
      registers,
    });
    this.errors = new Counter({ name: 'tcqos_agent_errors_total', help: 'Errors of the agent, by where they happened', labelNames: ['kind'], registers });
    this.applySeconds = new Histogram({
      name: 'tcqos_agent_apply_seconds',
      help: 'Time to converge one attachment (derive the policy, read the kernel, compare, apply the difference)',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.watchRestarts = new Counter({
      name: 'tcqos_agent_watch_restarts_total',
      help: "Times the watch on the node's pods was opened again, by reason",
      labelNames: ['reason'],
      registers,
    });
    this.driftHealed = new Counter({
      name: 'tcqos_agent_drift_healed_total',
      help: 'Times an attachment whose qdiscs, classes or filters were changed outside tcqos was put back to its policy',
      registers,
    });
    this.retries = new Counter({ name: 'tcqos_agent_retries_total', help: 'Pods queued again after a failure, with per-pod exponential back-off', registers });
    this.queueDepth = new Gauge({ name: 'tcqos_agent_queue_depth', help: 'Pods queued or being converged now', registers });
    this.statsUnreadable = new Gauge({
      name: 'tcqos_agent_stats_unreadable_attachments',
      help: 'Attachments whose netns exists but whose counters could not be read at the last refresh (left out of the tcqos_class_* and tcqos_direction_* families)',
      registers,
    });
    this.statsRefreshSeconds = new Histogram({
      name: 'tcqos_agent_stats_refresh_seconds',
      help: 'Time to read every attachment\'s counters for the /metrics snapshot',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.statsAge = new Gauge({ name: 'tcqos_agent_stats_age_seconds', help: 'Age of the counters /metrics serves (read in the background)', registers });
    // every label value shows from the first scrape (at 0), so rate() and alerts work before the first event
    for (const result of ['applied', 'unchanged', 'healed', 'invalid', 'not_admitted', 'failed'] satisfies ReconcileResult[]) this.reconciles.inc({ result }, 0);
    for (const kind of ['list', 'watch', 'apply', 'event', 'gc', 'stats', 'status'] satisfies ErrorKind[]) this.errors.inc({ kind }, 0);
    for (const reason of ['closed', 'expired', 'error', 'stalled'] satisfies RestartReason[]) this.watchRestarts.inc({ reason }, 0);
  }
}
