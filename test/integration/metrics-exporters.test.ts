/**
 * The rendered stats in the real pipeline, on loopback: written atomically into a textfile directory,
 * served by Debian's node_exporter (textfile collector only), scraped and queried by Debian's Prometheus.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AttachmentStats, ClassStats, DirectionStats } from '../../src/attachment/stats.ts';
import { renderStats } from '../../src/metrics/prometheus.ts';
import { atomicWriteFile } from '../../src/metrics/textfile.ts';
import { parseExposition, startNodeExporter, startPrometheus, type NodeExporter, type PrometheusServer, type Series } from '../helpers/prometheus.ts';

function cls(name: string, minor: number, rate: number, bytes: number): ClassStats {
  return { name, classId: `7c05:${minor}`, rate, ceil: rate * 2, bytes, packets: Math.ceil(bytes / 1514), drops: minor, overlimits: minor * 10, backlogBytes: 0 };
}

function direction(name: DirectionStats['direction'], rate: number, classes: ClassStats[]): DirectionStats {
  const bytes = classes.reduce((total, c) => total + c.bytes, 0);
  return { direction: name, device: name === 'egress' ? 'eth0' : 'tqfeedface', rate, ceil: rate, bytes, packets: Math.ceil(bytes / 1514), drops: 0, overlimits: 0, backlogBytes: 0, classes };
}

function statsWithDbEgressBytes(dbEgressBytes: number): AttachmentStats[] {
  return [
    {
      containerId: 'feedface0001',
      ifname: 'eth0',
      netns: '/var/run/netns/cni-feed',
      network: 'macvlan-net',
      pod: { namespace: 'shop', name: 'api-0' },
      directions: [
        direction('egress', 40_000_000, [cls('db', 16, 30_000_000, dbEgressBytes), cls('default', 17, 10_000_000, 2_000)]),
        direction('ingress', 20_000_000, [cls('db', 16, 15_000_000, 77_000_000), cls('default', 17, 5_000_000, 3_000)]),
      ],
    },
    {
      containerId: 'feedface0002',
      ifname: 'net1',
      netns: '/var/run/netns/cni-f00d',
      network: 'batch-net',
      directions: [direction('egress', 10_000_000, [cls('default', 1, 10_000_000, 4_242)])],
    },
  ];
}

/** Prometheus' view of labels: an empty value is no label (and the order is no information). */
function present(labels: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).filter(([, value]) => value !== '').sort(([a], [b]) => a.localeCompare(b)));
}

const sortedSeries = (series: readonly Series[]) => series.map((s) => ({ labels: present(s.labels), value: s.value })).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

let textfileDir: string;
let exporter: NodeExporter | undefined;
let prometheus: PrometheusServer | undefined;
const PROM_FILE = () => join(textfileDir, 'tcqos.prom');

beforeAll(async () => {
  textfileDir = await mkdtemp(join(tmpdir(), 'tqmet-textfile-'));
  await atomicWriteFile(PROM_FILE(), await renderStats(statsWithDbEgressBytes(123_456_789)));
  exporter = await startNodeExporter(textfileDir);
  prometheus = await startPrometheus([{ job: 'node', targets: [exporter.address] }]);
});

afterAll(async () => {
  await prometheus?.stop();
  await exporter?.stop();
  await rm(textfileDir, { recursive: true, force: true });
});

describe('node_exporter textfile collector', () => {
  it('serves every tcqos family from the textfile directory, with the same types, help, labels and values', async () => {
    const ours = parseExposition(await renderStats(statsWithDbEgressBytes(123_456_789)));
    const served = parseExposition(await exporter!.metrics());
    expect(served.get('node_textfile_scrape_error')?.samples.map((s) => s.value)).toEqual([0]);
    for (const family of ours.values()) {
      // node_exporter leaves out a family without series (here: the uplink families, no attachment naming one).
      if (!family.samples.length) continue;
      const theirs = served.get(family.name);
      expect(theirs, family.name).toBeDefined();
      expect({ type: theirs!.type, help: theirs!.help }).toEqual({ type: family.type, help: family.help });
      expect(sortedSeries(theirs!.samples)).toEqual(sortedSeries(family.samples));
    }
  });
});

describe('Prometheus scraping node_exporter', () => {
  it('answers a query for one class with its series, pod labels included', async () => {
    const series = await prometheus!.waitForSeries('tcqos_class_bytes_total{class="db"}', { until: (found) => found.length === 2 });
    expect(sortedSeries(series)).toEqual(
      sortedSeries(
        [
          { direction: 'egress', value: 123_456_789 },
          { direction: 'ingress', value: 77_000_000 },
        ].map(({ direction, value }) => ({
          labels: {
            __name__: 'tcqos_class_bytes_total',
            job: 'node',
            instance: exporter!.address,
            container_id: 'feedface0001',
            interface: 'eth0',
            direction,
            class: 'db',
            pod_namespace: 'shop',
            pod: 'api-0',
          },
          value,
        })),
      ),
    );
  });

  it('shows an attachment without a known pod with no pod labels at all', async () => {
    const series = await prometheus!.waitForSeries('tcqos_class_bytes_total{pod=""}');
    expect(series.map((s) => [s.labels.container_id, s.labels.class, s.value])).toEqual([['feedface0002', 'default', 4_242]]);
    expect(Object.keys(series[0]!.labels)).not.toContain('pod');
    expect(Object.keys(series[0]!.labels)).not.toContain('pod_namespace');
  });

  it("computes a class's byte rate from the counter as the textfile is rewritten", async () => {
    const bytesPerSecond = 125_000;
    const start = Date.now();
    let writing = true;
    const writer = (async () => {
      while (writing) {
        const bytes = 200_000_000 + Math.round(((Date.now() - start) / 1000) * bytesPerSecond);
        await atomicWriteFile(PROM_FILE(), await renderStats(statsWithDbEgressBytes(bytes)));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    try {
      // Four scrapes of the rising counter fill the 4 s window.
      await new Promise((resolve) => setTimeout(resolve, 5_500));
      const [rate] = await prometheus!.waitForSeries('rate(tcqos_class_bytes_total{class="db",direction="egress"}[4s])');
      expect(rate!.value).toBeGreaterThan(bytesPerSecond * 0.8);
      expect(rate!.value).toBeLessThan(bytesPerSecond * 1.2);
    } finally {
      writing = false;
      await writer;
    }
  });
});
