/** The /metrics snapshot: read in the background, never more than a quarter of the time, unreadable attachments counted. */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../src/agent/metrics.ts';
import { StatsSnapshot } from '../../src/agent/snapshot.ts';
import type { Logger } from '../../src/log.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the counters snapshot', () => {
  it('spaces refreshes that take long: the pause after one is at least three times its length', async () => {
    const reads: number[] = [];
    const warned: string[] = [];
    const log: Logger = { info: () => undefined, debug: () => undefined, error: () => undefined, warn: (_fields, message) => warned.push(message) };
    const snapshot = new StatsSnapshot(
      async () => {
        reads.push(Date.now());
        await sleep(100);
        return { stats: [], unreadable: [{ containerId: 'c', ifname: 'eth0', reason: 'tc: no such device' }] };
      },
      async () => 'rendered\n',
      0.01,
      new AgentMetrics(new Registry()),
      log,
    );
    snapshot.start();
    await sleep(1000);
    await snapshot.stop();
    // 100 ms reading, then at least 300 ms pause: 3 reads in a second (a 10 ms period alone would allow 9)
    expect(reads.length).toBeLessThanOrEqual(3);
    for (let i = 1; i < reads.length; i++) expect(reads[i]! - reads[i - 1]!).toBeGreaterThanOrEqual(390);
    expect(snapshot.text).toBe('rendered\n');
    // logged when it became unreadable, not at every refresh
    expect(warned).toEqual(['the counters of an attachment cannot be read: left out of /metrics until they can']);
  });
});
