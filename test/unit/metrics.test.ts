/** The Prometheus rendering of attachment stats: families, types, labels, values, promtool's lint; the textfile writer. */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AttachmentStats, ClassStats, DirectionStats } from '../../src/attachment/stats.ts';
import { registerAttachmentMetrics, renderStats } from '../../src/metrics/prometheus.ts';
import { atomicWriteFile } from '../../src/metrics/textfile.ts';
import { parseExposition, PROMTOOL, type ExposedFamily, type Series } from '../helpers/prometheus.ts';
import { run } from '../helpers/run.ts';

function cls(name: string, minor: number, rate: number, ceil: number, bytes: number, drops = 0): ClassStats {
  return { name, classId: `7c05:${minor}`, rate, ceil, bytes, packets: Math.ceil(bytes / 1514), drops, overlimits: drops * 3 + minor, backlogBytes: drops ? 1514 * minor : 0 };
}

/** A direction whose totals are its classes' sums, as the kernel's root class reports them. */
function direction(name: DirectionStats['direction'], device: string, rate: number, classes: ClassStats[]): DirectionStats {
  const sum = (field: 'bytes' | 'packets' | 'drops' | 'overlimits' | 'backlogBytes') => classes.reduce((total, c) => total + c[field], 0);
  return { direction: name, device, rate, ceil: rate, bytes: sum('bytes'), packets: sum('packets'), drops: sum('drops'), overlimits: sum('overlimits'), backlogBytes: sum('backlogBytes'), classes };
}

const web: AttachmentStats = {
  containerId: '3f9ac0de51b2',
  ifname: 'eth0',
  netns: '/var/run/netns/cni-3f9a',
  network: 'macvlan-net',
  pod: { namespace: 'shop', name: 'web-7d9f', uid: '0b6e-41' },
  uplink: { name: 'eth1', capacity: 1e9, reserve: 1e8 },
  directions: [
    direction('egress', 'eth0', 40_000_000, [cls('db', 16, 30_000_000, 40_000_000, 5_000_000_123, 7), cls('default', 17, 10_000_000, 40_000_000, 812_345)]),
    direction('ingress', 'tq3f9ac0de', 30_000_000, [
      cls('db', 16, 20_000_000, 30_000_000, 91_000_000),
      cls('backup', 18, 5_000_000, 10_000_000, 4_500_000, 2),
      cls('default', 17, 5_000_000, 30_000_000, 12_000),
    ]),
  ],
};

const batch: AttachmentStats = {
  containerId: 'c0ffee42aa17',
  ifname: 'net1',
  netns: '/var/run/netns/cni-c0ff',
  network: 'batch-net',
  directions: [
    direction('egress', 'net1', 10_000_000, [cls('default', 1, 10_000_000, 10_000_000, 3_000)]),
    direction('ingress', 'tqc0ffee42', 20_000_000, [cls('default', 1, 20_000_000, 20_000_000, 6_000)]),
  ],
};

const FIXTURE = [web, batch];

type Measured = Pick<ClassStats, 'bytes' | 'packets' | 'drops' | 'overlimits' | 'backlogBytes' | 'rate' | 'ceil'>;
const MEASURES: readonly { suffix: string; type: string; value: (m: Measured) => number }[] = [
  { suffix: 'bytes_total', type: 'counter', value: (m) => m.bytes },
  { suffix: 'packets_total', type: 'counter', value: (m) => m.packets },
  { suffix: 'drops_total', type: 'counter', value: (m) => m.drops },
  { suffix: 'overlimits_total', type: 'counter', value: (m) => m.overlimits },
  { suffix: 'backlog_bytes', type: 'gauge', value: (m) => m.backlogBytes },
  // Prometheus' base unit is the byte: the configured bit/s, divided by 8.
  { suffix: 'rate_bytes_per_second', type: 'gauge', value: (m) => m.rate / 8 },
  { suffix: 'ceil_bytes_per_second', type: 'gauge', value: (m) => m.ceil / 8 },
];

function directionLabels(attachment: AttachmentStats, d: DirectionStats): Record<string, string> {
  return {
    container_id: attachment.containerId,
    interface: attachment.ifname,
    direction: d.direction,
    pod_namespace: attachment.pod?.namespace ?? '',
    pod: attachment.pod?.name ?? '',
    uplink: attachment.uplink?.name ?? '',
  };
}

function only(family: ExposedFamily | undefined, labels: Record<string, string>): Series {
  const found = family?.samples.filter((s) => JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(Object.entries(labels).sort())) ?? [];
  expect(found, `${family?.name} ${JSON.stringify(labels)}`).toHaveLength(1);
  return found[0]!;
}

let text: string;
let families: Map<string, ExposedFamily>;

beforeAll(async () => {
  text = await renderStats(FIXTURE);
  families = parseExposition(text);
});

describe('renderStats', () => {
  it('works out one family per turn of the event loop, so a server answers between them', async () => {
    const many = Array.from({ length: 250 }, (_, i) => FIXTURE.map((attachment) => ({ ...attachment, containerId: `${attachment.containerId}${i}` }))).flat();
    // a callback that queues itself again runs once per turn of the loop
    let turns = 0;
    let rendering = true;
    const count = () => {
      turns++;
      if (rendering) setImmediate(count);
    };
    setImmediate(count);
    const rendered = await renderStats(many);
    rendering = false;
    expect(parseExposition(rendered).size).toBe(families.size);
    expect(turns).toBeGreaterThanOrEqual(families.size);
  });

  it('exposes seven class families, seven direction families, seven of each attachment\'s class on its uplink and four uplink gauges, in node_exporter style', () => {
    const expected = ['class', 'direction', 'uplink_class'].flatMap((scope) => MEASURES.map((m) => [`tcqos_${scope}_${m.suffix}`, m.type]));
    const uplink = ['capacity_bytes_per_second', 'guaranteeable_bytes_per_second', 'guaranteed_bytes_per_second', 'attachments'].map((suffix) => [`tcqos_uplink_${suffix}`, 'gauge']);
    expect([...families.values()].map((f) => [f.name, f.type])).toEqual([...expected, ...uplink]);
  });

  it('labels each attachment\'s series with its uplink, and sums each uplink\'s guarantees per direction', () => {
    expect(only(families.get('tcqos_class_bytes_total'), { ...directionLabels(web, web.directions[0]!), class: 'db' }).labels['uplink']).toBe('eth1');
    expect(families.get('tcqos_uplink_capacity_bytes_per_second')!.samples).toEqual([{ labels: { uplink: 'eth1' }, value: 1e9 / 8 }]);
    expect(families.get('tcqos_uplink_guaranteeable_bytes_per_second')!.samples).toEqual([{ labels: { uplink: 'eth1' }, value: (1e9 - 1e8) / 8 }]);
    expect(families.get('tcqos_uplink_attachments')!.samples).toEqual([{ labels: { uplink: 'eth1' }, value: 1 }]);
    expect(families.get('tcqos_uplink_guaranteed_bytes_per_second')!.samples).toEqual([
      { labels: { uplink: 'eth1', direction: 'egress' }, value: 40_000_000 / 8 },
      { labels: { uplink: 'eth1', direction: 'ingress' }, value: 30_000_000 / 8 },
    ]);
  });

  it('every family explains itself; the byte counters say they count frames with the Ethernet header', () => {
    for (const family of families.values()) expect(family.help.length, family.name).toBeGreaterThan(40);
    expect(families.get('tcqos_class_bytes_total')!.help).toMatch(/Ethernet header/);
    expect(families.get('tcqos_direction_bytes_total')!.help).toMatch(/Ethernet header/);
  });

  it('has one series per configured class, the default included, all with the same label names', () => {
    for (const m of MEASURES) {
      const family = families.get(`tcqos_class_${m.suffix}`)!;
      expect(family.samples).toHaveLength(7);
      for (const sample of family.samples) {
        expect(Object.keys(sample.labels).sort()).toEqual(['class', 'container_id', 'direction', 'interface', 'pod', 'pod_namespace', 'uplink']);
      }
      expect(family.samples.filter((s) => s.labels.class === 'default')).toHaveLength(4);
    }
  });

  it('labels an attachment without a known pod with pod="" and pod_namespace="" (no label, to Prometheus)', () => {
    const batchSeries = families.get('tcqos_class_bytes_total')!.samples.filter((s) => s.labels.container_id === batch.containerId);
    expect(batchSeries).toHaveLength(2);
    for (const s of batchSeries) expect(s.labels).toMatchObject({ pod: '', pod_namespace: '', interface: 'net1' });
  });

  it("gives each class series that class's own counters, backlog and configured rate and ceil", () => {
    for (const attachment of FIXTURE) {
      for (const d of attachment.directions) {
        for (const c of d.classes) {
          for (const m of MEASURES) {
            expect(only(families.get(`tcqos_class_${m.suffix}`), { ...directionLabels(attachment, d), class: c.name }).value).toBe(m.value(c));
          }
        }
      }
    }
  });

  it('gives each direction its totals in families of their own, so summing a class family counts each byte once', () => {
    for (const attachment of FIXTURE) {
      for (const d of attachment.directions) {
        for (const m of MEASURES) {
          expect(only(families.get(`tcqos_direction_${m.suffix}`), directionLabels(attachment, d)).value).toBe(m.value(d));
        }
        const classSum = families
          .get('tcqos_class_bytes_total')!
          .samples.filter((s) => s.labels.container_id === attachment.containerId && s.labels.direction === d.direction)
          .reduce((total, s) => total + s.value, 0);
        expect(classSum).toBe(d.bytes);
      }
    }
    expect(families.get('tcqos_direction_bytes_total')!.samples.every((s) => !('class' in s.labels))).toBe(true);
  });

  it('prints large counters as exact integers', () => {
    expect(text).toContain(
      'tcqos_class_bytes_total{container_id="3f9ac0de51b2",interface="eth0",direction="egress",pod_namespace="shop",pod="web-7d9f",uplink="eth1",class="db"} 5000000123\n',
    );
  });

  it('is accepted by promtool check metrics without a single remark, with and without attachments', async () => {
    if (!existsSync(PROMTOOL)) throw new Error(`${PROMTOOL} is missing: install Debian's prometheus package (scripts/install-deps.sh)`);
    for (const input of [text, await renderStats([])]) {
      const checked = await run(PROMTOOL, ['check', 'metrics'], { input });
      expect({ exitCode: checked.exitCode, stdout: checked.stdout, stderr: checked.stderr }).toEqual({ exitCode: 0, stdout: '', stderr: '' });
    }
  });

  it('declares every family even with no attachments, with no series', async () => {
    const empty = parseExposition(await renderStats([]));
    expect(empty.size).toBe(25);
    for (const family of empty.values()) expect(family.samples).toEqual([]);
  });
});

describe('registerAttachmentMetrics', () => {
  it('reads the stats once per scrape, and each scrape shows only what is there now', async () => {
    const registry = new Registry();
    let reads = 0;
    let current: readonly AttachmentStats[] = FIXTURE;
    registerAttachmentMetrics(registry, async () => {
      reads++;
      return current;
    });

    const first = parseExposition(await registry.metrics());
    expect(reads).toBe(1);
    expect(first.get('tcqos_class_bytes_total')!.samples).toHaveLength(7);

    // The batch pod is gone and web's db class was re-created (its counter restarted).
    const webNow: AttachmentStats = {
      ...web,
      directions: web.directions.map((d) => (d.direction === 'egress' ? { ...d, classes: d.classes.map((c) => (c.name === 'db' ? { ...c, bytes: 1_514 } : c)) } : d)),
    };
    current = [webNow];
    const second = parseExposition(await registry.metrics());
    expect(reads).toBe(2);
    const bytes = second.get('tcqos_class_bytes_total')!;
    expect(bytes.samples).toHaveLength(5);
    expect(bytes.samples.some((s) => s.labels.container_id === batch.containerId)).toBe(false);
    expect(only(bytes, { ...directionLabels(web, web.directions[0]!), class: 'db' }).value).toBe(1_514);
    expect(second.get('tcqos_direction_packets_total')!.samples).toHaveLength(2);
  });

  it('fails the scrape when the stats cannot be read', async () => {
    const registry = new Registry();
    registerAttachmentMetrics(registry, async () => {
      throw new Error('registry unreadable');
    });
    await expect(registry.metrics()).rejects.toThrow('registry unreadable');
  });
});

describe('atomicWriteFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tqmet-unit-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('replaces the file whole and leaves no temporary file behind', async () => {
    const target = join(dir, 'tcqos.prom');
    await atomicWriteFile(target, 'first\n');
    await atomicWriteFile(target, text);
    expect(await readFile(target, 'utf8')).toBe(text);
    expect(await readdir(dir)).toEqual(['tcqos.prom']);
  });

  it('throws and leaves nothing when the directory does not exist', async () => {
    await expect(atomicWriteFile(join(dir, 'missing', 'tcqos.prom'), text)).rejects.toThrow(/ENOENT/);
    expect(await readdir(dir)).toEqual(['tcqos.prom']);
  });
});
