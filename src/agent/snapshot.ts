/**
 * The attachments' counters as /metrics serves them: read in the background every period and kept
 * as rendered text, so a scrape costs no process and no tc run, answers in milliseconds whatever
 * the number of attachments, and never waits behind a read. A refresh starts only after the last
 * one ended, and after a pause at least three times as long as it took: on a slow node the snapshot
 * gets older (tcqos_agent_stats_age_seconds says how old), and refreshes never take the node's CPU.
 *
 * An attachment whose netns exists but whose counters could not be read is counted
 * (tcqos_agent_stats_unreadable_attachments) and logged when it becomes unreadable and when it is
 * readable again, never silently left out.
 */
import type { AttachmentStats, StatsReading, UnreadableStats } from '../attachment/stats.ts';
import type { Logger } from '../log.ts';
import type { AgentMetrics } from './metrics.ts';

/** The wait after a refresh is at least this many times as long as the refresh took. */
const SPACING = 3;

export class StatsSnapshot {
  private readonly read: () => Promise<StatsReading>;
  private readonly render: (stats: readonly AttachmentStats[]) => Promise<string>;
  private readonly periodMs: number;
  private readonly metrics: AgentMetrics;
  private readonly log: Logger;
  private rendered = '';
  private readAt: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** Attachment key -> why its counters could not be read, as last logged. */
  private unreadable = new Map<string, string>();

  constructor(
    read: () => Promise<StatsReading>,
    render: (stats: readonly AttachmentStats[]) => Promise<string>,
    periodSeconds: number,
    metrics: AgentMetrics,
    log: Logger,
  ) {
    this.read = read;
    this.render = render;
    this.periodMs = periodSeconds * 1000;
    this.metrics = metrics;
    this.log = log;
  }

  /** The families of the last reading, rendered; empty before the first one. */
  get text(): string {
    if (this.readAt !== undefined) this.metrics.statsAge.set((Date.now() - this.readAt) / 1000);
    return this.rendered;
  }

  start(): void {
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      const started = Date.now();
      // A node whose counters take long to read is not kept reading them: refreshes take at most a
      // quarter of the time, however short the period (the snapshot's age says how old it is).
      this.running = this.refresh().finally(() => this.schedule(Math.max(this.periodMs, SPACING * (Date.now() - started))));
    }, ms);
  }

  private async refresh(): Promise<void> {
    const stopTimer = this.metrics.statsRefreshSeconds.startTimer();
    const started = Date.now();
    try {
      const reading = await this.read();
      this.rendered = await this.render(reading.stats);
      this.readAt = started;
      this.noteUnreadable(reading.unreadable);
      this.log.debug({ attachments: reading.stats.length, unreadable: reading.unreadable.length, ms: Date.now() - started }, 'read the counters for /metrics');
    } catch (error) {
      this.metrics.errors.inc({ kind: 'stats' });
      this.log.error({ error: (error as Error).message }, 'reading the counters for /metrics failed; serving the last reading');
    } finally {
      stopTimer();
    }
  }

  private noteUnreadable(unreadable: readonly UnreadableStats[]): void {
    const now = new Map(unreadable.map((entry) => [`${entry.containerId}/${entry.ifname}`, entry.reason]));
    this.metrics.statsUnreadable.set(now.size);
    for (const entry of unreadable) {
      const key = `${entry.containerId}/${entry.ifname}`;
      if (this.unreadable.get(key) === entry.reason) continue;
      this.metrics.errors.inc({ kind: 'stats' });
      this.log.warn({ containerId: entry.containerId, ifname: entry.ifname, error: entry.reason }, 'the counters of an attachment cannot be read: left out of /metrics until they can');
    }
    for (const key of this.unreadable.keys()) {
      if (!now.has(key)) this.log.info({ attachment: key }, 'the counters of an attachment can be read again (or it is gone)');
    }
    this.unreadable = now;
  }
}
