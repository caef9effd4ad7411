/**
 * `tcqos stats` against the kernel's own counters, real traffic, the built binary: every figure is
 * the one its documented kernel object holds (each counted once), for a pod shaped in its netns and
 * one shaped on the host end of its veth; after an update that replaces a leaf queue, no figure goes
 * down, and each is the kernel's plus what the replaced queue had counted (recorded at the update);
 * the Prometheus families carry the same values.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { invoke, operator, TEST_STATE_DIR } from '../helpers/plugin.ts';
import { parseExposition } from '../helpers/prometheus.ts';
import { must, run } from '../helpers/run.ts';
import { Testbed, type Pod } from '../helpers/testbed.ts';
import { ifbName } from '../../src/tc/handles.ts';

const bed = new Testbed('tqopst', 102);
let runner: string;
let pod: Pod;
let peer: Pod;
/** A veth pod whose host end (tqh0) sits in the runner namespace, the "node": shaped there. */
let hostPod: Pod;
const HOST_END = 'tqh0';
const HOST_END_V4 = bed.v4(1);

interface Counters {
  bytes: number;
  packets: number;
  drops: number;
  overlimits: number;
  backlogBytes: number;
}
type Figures = Counters & { classes: Record<string, Counters> };
type Carried = { drops: number; overlimits: number; classes: Record<string, Omit<Counters, 'backlogBytes'>> };

interface StatsJson {
  containerId: string;
  directions: Array<Counters & { direction: string; classes: Array<Counters & { name: string; classId: string }> }>;
}

/**
 * The figures as documented, computed here from `tc -s -j qdisc show` and `tc -s class show`
 * (not through tcqos's reader): class bytes/packets/backlog from the HTB class, drops from its leaf
 * queue, overlimits from both; the direction from the HTB qdisc, its drops and overlimits its leaf
 * queues' plus what HTB counted outside its classes.
 */
async function kernelFigures(netns: string, device: string, ids: Record<string, number>): Promise<Figures> {
  const qdiscs = JSON.parse(await must('ip', ['netns', 'exec', netns, 'tc', '-s', '-j', 'qdisc', 'show', 'dev', device])) as Array<{
    handle: string;
    parent?: string;
    root?: boolean;
    bytes: number;
    packets: number;
    drops: number;
    overlimits: number;
    backlog: number;
  }>;
  const text = await must('ip', ['netns', 'exec', netns, 'tc', '-s', 'class', 'show', 'dev', device]);
  const htb = new Map<string, Counters>();
  for (const found of text.matchAll(/^class htb (\S+) .*\n Sent (\d+) bytes (\d+) pkt \(dropped (\d+), overlimits (\d+) requeues \d+\)\s*\n backlog (\d+)b/gm)) {
    htb.set(found[1]!, { bytes: +found[2]!, packets: +found[3]!, drops: +found[4]!, overlimits: +found[5]!, backlogBytes: +found[6]! });
  }
  const root = qdiscs.find((q) => q.root && q.handle === '7c05:')!;
  const leaves = qdiscs.filter((q) => q.parent?.startsWith('7c05:'));
  const classes: Record<string, Counters> = {};
  for (const [name, minor] of Object.entries(ids)) {
    const id = `7c05:${minor.toString(16)}`;
    const cls = htb.get(id)!;
    const leaf = leaves.find((q) => q.parent === id)!;
    classes[name] = { bytes: cls.bytes, packets: cls.packets, backlogBytes: cls.backlogBytes, drops: leaf.drops, overlimits: cls.overlimits + leaf.overlimits };
  }
  const htbDrops = [...htb.values()].reduce((sum, c) => sum + c.drops, 0);
  return {
    bytes: root.bytes,
    packets: root.packets,
    backlogBytes: root.backlog,
    drops: leaves.reduce((sum, q) => sum + q.drops, 0) + root.drops - htbDrops,
    overlimits: root.overlimits + leaves.reduce((sum, q) => sum + q.overlimits, 0),
    classes,
  };
}

function record(containerId: string, ifname = 'eth0'): { classIds: Record<string, Record<string, number>>; counters?: Record<string, Carried> } {
  return JSON.parse(readFileSync(join(TEST_STATE_DIR, 'attachments', `${ifname}@${containerId}.json`), 'utf8'));
}

async function stats(containerId: string): Promise<StatsJson> {
  const ran = await operator(runner, ['stats', '--json', '--interval', '0', '--container', containerId]);
  expect(ran.exitCode, ran.stderr).toBe(0);
  return (JSON.parse(ran.stdout) as StatsJson[])[0]!;
}

const FIELDS = ['bytes', 'packets', 'drops', 'overlimits'] as const;

/**
 * Reads the kernel, then tcqos, then the kernel again (traffic has stopped, but a stray neighbour
 * packet may pass): every counter of tcqos less what is carried lies between the two readings.
 */
async function expectKernelFigures(containerId: string, netns: string, devices: Record<string, string>): Promise<StatsJson> {
  const { classIds, counters: carried = {} } = record(containerId);
  const first: Record<string, Figures> = {};
  for (const [direction, device] of Object.entries(devices)) first[direction] = await kernelFigures(netns, device, classIds[direction]!);
  const ours = await stats(containerId);
  for (const [direction, device] of Object.entries(devices)) {
    const second = await kernelFigures(netns, device, classIds[direction]!);
    const figures = ours.directions.find((d) => d.direction === direction)!;
    const extra = carried[direction];
    const within = (label: string, value: number, low: number, high: number) => {
      expect(value, `${label}: ${value} is not between the kernel's ${low} and ${high}`).toBeGreaterThanOrEqual(low);
      expect(value, `${label}: ${value} is not between the kernel's ${low} and ${high}`).toBeLessThanOrEqual(high);
    };
    for (const field of FIELDS) {
      const carriedHere = field === 'drops' || field === 'overlimits' ? (extra?.[field] ?? 0) : 0;
      within(`${direction} ${field}`, figures[field] - carriedHere, first[direction]![field], second[field]);
      for (const cls of figures.classes) {
        within(`${direction} class ${cls.name} ${field}`, cls[field] - (extra?.classes[cls.name]?.[field] ?? 0), first[direction]!.classes[cls.name]![field], second.classes[cls.name]![field]);
      }
    }
    expect(figures.backlogBytes).toBe(0);
  }
  return ours;
}

/** `parallel` TCP flows for `seconds` (ingress: from the peer), enough to overflow a class's queue. */
async function flood(client: string, server: string, address: string, port: number, direction: 'egress' | 'ingress', parallel = 8, seconds = 2): Promise<void> {
  const listening = run('ip', ['netns', 'exec', server, 'iperf3', '-s', '-1', '-p', String(port)], { timeoutMs: (seconds + 20) * 1000 });
  for (let i = 0; i < 50; i++) {
    if ((await run('ip', ['netns', 'exec', server, 'ss', '-Htln', `sport = :${port}`])).stdout.trim()) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await must('ip', ['netns', 'exec', client, 'iperf3', '-c', address, '-p', String(port), '-t', String(seconds), '-P', String(parallel), ...(direction === 'ingress' ? ['-R'] : [])], {
    timeoutMs: (seconds + 20) * 1000,
  });
  await listening;
  // Let the queues drain: backlog 0, counters still.
  await new Promise((resolve) => setTimeout(resolve, 300));
}

const prevResult = (netns: string, host?: string) => ({
  cniVersion: '1.1.0',
  interfaces: [...(host ? [{ name: host, mac: '02:00:00:00:01:01' }] : []), { name: 'eth0', mac: '02:00:00:00:00:01', sandbox: netns }],
  ips: [{ address: `${bed.v4(2)}/24`, interface: host ? 1 : 0 }],
});

const add = (target: Pod, containerId: string, entry: object, host?: string) =>
  invoke(runner, {
    command: 'ADD',
    config: { cniVersion: '1.1.0', name: 'stats', type: 'tcqos', ...entry, prevResult: prevResult(target.path, host) },
    netns: target.path,
    ifname: 'eth0',
    containerId,
  });

beforeAll(async () => {
  await bed.removeLeftovers();
  runner = await bed.netns('runner');
  [pod, peer] = await bed.vethPair('pod', 'peer', 2, 3);
  const hostNs = await bed.netns('hpod');
  await must('ip', ['-n', hostNs, 'link', 'add', 'name', 'eth0', 'type', 'veth', 'peer', 'name', HOST_END, 'netns', runner]);
  await must('ip', ['-n', hostNs, 'addr', 'add', `${bed.v4(10)}/24`, 'dev', 'eth0']);
  await must('ip', ['-n', hostNs, 'link', 'set', 'eth0', 'up']);
  await must('ip', ['-n', runner, 'addr', 'add', `${HOST_END_V4}/24`, 'dev', HOST_END]);
  await must('ip', ['-n', runner, 'link', 'set', HOST_END, 'up']);
  hostPod = { netns: hostNs, path: `/var/run/netns/${hostNs}`, ifname: 'eth0', ipv4: bed.v4(10), ipv6: '' };
});

afterAll(async () => {
  await invoke(runner, { command: 'DEL', config: { cniVersion: '1.1.0', name: 'stats', type: 'tcqos' }, netns: pod.path, containerId: 'st-pod' });
  await invoke(runner, { command: 'DEL', config: { cniVersion: '1.1.0', name: 'stats', type: 'tcqos' }, netns: hostPod.path, containerId: 'st-host' });
  await bed.destroy();
});

describe('stats against the kernel, with real traffic', () => {
  it('a pod shaped in its netns: every figure is its kernel object\'s; an update replacing a leaf queue takes no figure down', async () => {
    const entry = { egress: { rate: '50mbit', classes: [{ name: 'db', rate: '20mbit', peers: [`${peer.ipv4}/32`] }] }, ingress: { rate: '30mbit' } };
    const added = await add(pod, 'st-pod', entry);
    expect(added.exitCode, added.stdout).toBe(0);
    await flood(pod.netns, peer.netns, peer.ipv4, 5701, 'egress');
    await flood(pod.netns, peer.netns, peer.ipv4, 5702, 'ingress', 4);
    const devices = { egress: 'eth0', ingress: ifbName('eth0') };
    const before = await expectKernelFigures('st-pod', pod.netns, devices);
    const db = (s: StatsJson) => s.directions.find((d) => d.direction === 'egress')!.classes.find((c) => c.name === 'db')!;
    expect(db(before).drops, 'the flood overflowed db\'s queue').toBeGreaterThan(0);
    console.info(`before the update: egress drops ${before.directions[0]!.drops} (db ${db(before).drops}), overlimits ${before.directions[0]!.overlimits}`);

    // A smaller bucket: the leaf queue under db is replaced, and the kernel's count restarts.
    const lowered = await operator(runner, ['update', '--container', 'st-pod', '--ifname', 'eth0', '--config', '-'], JSON.stringify({
      ...entry,
      egress: { ...entry.egress, classes: [{ ...entry.egress.classes[0], rate: '5mbit' }] },
    }));
    expect(lowered.exitCode, lowered.stderr).toBe(0);
    expect(lowered.stdout).toMatch(/qdisc del dev eth0 parent 7c05:10/);
    expect(record('st-pod').counters?.['egress']?.classes['db']?.drops).toBe(db(before).drops);

    const after = await expectKernelFigures('st-pod', pod.netns, devices);
    for (const direction of after.directions) {
      const earlier = before.directions.find((d) => d.direction === direction.direction)!;
      for (const field of FIELDS) {
        expect(direction[field], `${direction.direction} ${field}`).toBeGreaterThanOrEqual(earlier[field]);
        for (const cls of direction.classes) expect(cls[field], `${direction.direction} ${cls.name} ${field}`).toBeGreaterThanOrEqual(earlier.classes.find((c) => c.name === cls.name)![field]);
      }
    }

    // New traffic is added on top of the carried counts; the Prometheus families say the same.
    await flood(pod.netns, peer.netns, peer.ipv4, 5703, 'egress');
    const later = await expectKernelFigures('st-pod', pod.netns, devices);
    expect(db(later).drops).toBeGreaterThan(db(after).drops);
    const exposed = parseExposition((await operator(runner, ['stats', '--prometheus', '--container', 'st-pod'])).stdout);
    const value = (family: string, labels: Record<string, string>) =>
      exposed.get(family)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    for (const direction of later.directions) {
      for (const [field, suffix] of [['bytes', 'bytes_total'], ['packets', 'packets_total'], ['drops', 'drops_total'], ['overlimits', 'overlimits_total']] as const) {
        const exposedValue = value(`tcqos_direction_${suffix}`, { direction: direction.direction });
        expect(exposedValue, `tcqos_direction_${suffix}`).toBeGreaterThanOrEqual(direction[field]);
        expect(exposedValue! - direction[field], `tcqos_direction_${suffix}: only stray packets between two reads`).toBeLessThanOrEqual(field === 'bytes' ? 2_000 : field === 'packets' ? 10 : 0);
        for (const cls of direction.classes) {
          const classValue = value(`tcqos_class_${suffix}`, { direction: direction.direction, class: cls.name });
          expect(classValue! - cls[field], `tcqos_class_${suffix}{class="${cls.name}"}`).toBeGreaterThanOrEqual(0);
          expect(classValue! - cls[field]).toBeLessThanOrEqual(field === 'bytes' ? 2_000 : field === 'packets' ? 10 : 0);
        }
      }
    }
  });

  it('a veth pod shaped on its host end: the figures come from the host end and its ifb in the node namespace', async () => {
    const added = await add(hostPod, 'st-host', { egress: { rate: '20mbit' }, ingress: { rate: '15mbit' } }, HOST_END);
    expect(added.exitCode, added.stdout).toBe(0);
    expect(record('st-host')).toMatchObject({ host: { interface: HOST_END } });
    await flood(hostPod.netns, runner, HOST_END_V4, 5704, 'egress');
    await flood(hostPod.netns, runner, HOST_END_V4, 5705, 'ingress', 4);
    // On the host end, the root carries what the pod receives and the ifb what it sends.
    const figures = await expectKernelFigures('st-host', runner, { ingress: HOST_END, egress: ifbName(HOST_END) });
    for (const direction of figures.directions) expect(direction.bytes, direction.direction).toBeGreaterThan(1_000_000);
  });
});
