/**
 * The attachment metrics in Prometheus' text format, through prom-client. Only the stats command and
 * the agent reach this module (lazily): the CNI path never loads prom-client.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Counter, Gauge, Registry } from 'prom-client';
import type { AttachmentStats } from '../attachment/stats.ts';
import { FAMILIES, type Family, type LabelName } from './families.ts';

/** The Content-Type of what `registry.metrics()` returns (text format 0.0.4). */
export const METRICS_CONTENT_TYPE: string = Registry.PROMETHEUS_CONTENT_TYPE;

type Snapshot = () => Promise<readonly AttachmentStats[]>;

/**
 * Registers every tcqos family on `registry`; each scrape calls `collect` and exposes what it returned.
 * Series of attachments or classes that are gone disappear with the next scrape.
 */
export function registerAttachmentMetrics(registry: Registry, collect: () => Promise<readonly AttachmentStats[]>): void {
  const snapshot = sharedWhilePending(collect);
  const turn = turnsOneAtATime();
  for (const family of FAMILIES) register(registry, family, async () => (await Promise.all([snapshot(), turn()]))[0]);
}

/** The text a scrape of these stats would return: for `tcqos stats --prometheus`. */
export async function renderStats(stats: readonly AttachmentStats[]): Promise<string> {
  const registry = new Registry();
  registerAttachmentMetrics(registry, async () => stats);
  return registry.metrics();
}

/**
 * The kernel's counters are absolute values, and prom-client's Counter only has inc(). Its collect hook
 * runs on every scrape before the values are read, so it resets the counter and incs each series from
 * zero to the kernel's value: the value exposed is exactly the kernel's, the family keeps
 * `# TYPE ... counter`, and no private prom-client API or hand-made text is involved. A Gauge would
 * give the right numbers under the wrong TYPE, and tools choose rate() or not by TYPE. The reset also
 * drops the series of attachments and classes that are gone.
 */
function register(registry: Registry, family: Family, snapshot: Snapshot): void {
  const config = { name: family.name, help: family.help, labelNames: family.labelNames, registers: [registry] };
  if (family.type === 'counter') {
    new Counter<LabelName>({
      ...config,
      async collect() {
        const samples = family.samples(await snapshot());
        this.reset();
        for (const sample of samples) this.inc(sample.labels, sample.value);
      },
    });
  } else {
    new Gauge<LabelName>({
      ...config,
      async collect() {
        const samples = family.samples(await snapshot());
        this.reset();
        for (const sample of samples) this.set(sample.labels, sample.value);
      },
    });
  }
}

/**
 * Each family is worked out in a turn of the event loop of its own, one after the other, so what
 * else the process serves (the agent's /healthz and /metrics) is answered between two: all of them
 * for 250 attachments took 100–200 ms, in one block when worked out together.
 */
function turnsOneAtATime(): () => Promise<void> {
  let last: Promise<void> = Promise.resolve();
  return () => (last = last.then(() => nextTurn()));
}

/**
 * One read of the stats per scrape: `registry.metrics()` starts every family's collect hook in the
 * same tick, so they all await the same pending read, and class and direction series come from one
 * snapshot. Once it settles, the next scrape reads afresh.
 */
function sharedWhilePending<T>(load: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () =>
    (pending ??= load().finally(() => {
      pending = undefined;
    }));
}
