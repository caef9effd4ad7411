/**
 * Live operations against the real kernel with the built binary: `tcqos update` on running flows,
 * CHECK after an update, stats against iperf3's byte counts and through Prometheus tooling, GC per
 * network, uplink admission under concurrency, and a corrupted registry record.
 */
import { readdirSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { expectShaped, flowWithIntervals, goodputMbit, TCP6_GOODPUT_RATIO, type IntervalReport } from '../helpers/iperf.ts';
import { invoke, operator, prevResultFor, TEST_STATE_DIR } from '../helpers/plugin.ts';
import { startNodeExporter } from '../helpers/prometheus.ts';
import { must, run } from '../helpers/run.ts';
import { Testbed, type Pod } from '../helpers/testbed.ts';

const bed = new Testbed('tqops', 50);
let runner: string;
let pod: Pod;
let peer: Pod;

function conf(extra: object, target: Pod = pod, name = 'live'): Record<string, unknown> {
  return { cniVersion: '1.1.0', name, type: 'tcqos', ...extra, prevResult: prevResultFor('1.1.0', target.path, target.ifname) };
}

const call = (command: 'ADD' | 'DEL' | 'CHECK' | 'GC', config: object, target: Pod = pod, containerId = 'live-1') =>
  invoke(runner, { command, config, netns: target.path, ifname: target.ifname, containerId });

/** `tcqos update` with a conflist-style tcqos entry on standard input. */
async function update(entry: object, containerId = 'live-1', ifname = 'eth0') {
  return operator(runner, ['update', '--container', containerId, '--ifname', ifname, '--config', '-'], JSON.stringify({ type: 'tcqos', ...entry }));
}

async function rootQdiscs(netns: string): Promise<Array<{ dev: string; handle: string; bytes: number }>> {
  const all = JSON.parse(await must('ip', ['netns', 'exec', netns, 'tc', '-s', '-j', 'qdisc', 'show'])) as Array<{ dev: string; handle: string; root?: boolean; bytes: number }>;
  return all.filter((q) => q.root && q.handle === '7c05:').map(({ dev, handle, bytes }) => ({ dev, handle, bytes }));
}

beforeAll(async () => {
  await bed.removeLeftovers();
  runner = await bed.netns('runner');
  [pod, peer] = await bed.vethPair('pod', 'peer', 2, 3);
});

afterAll(() => bed.destroy());

afterEach(async () => {
  await call('DEL', conf({}));
});

/** Mean goodput of the intervals inside [from, to) seconds of the flow. */
function meanMbit(report: IntervalReport, from: number, to: number): number {
  const inside = report.intervals.filter(([start, end]) => start >= from - 1e-6 && end <= to + 1e-6);
  return inside.reduce((sum, [, , mbit]) => sum + mbit, 0) / inside.length;
}

/**
 * A 10 s flow at 40 Mbit/s, lowered to 10 by `tcqos update` at 3 s and raised back to 40 at 6 s:
 * its goodput before, and from 1 s after each command. No 0.5 s interval of it may be empty.
 */
async function liveUpdates(direction: 'egress' | 'ingress'): Promise<[number, number, number]> {
  const flow = flowWithIntervals({ podNetns: pod.netns, peerNetns: peer.netns, peerAddress: peer.ipv4, port: 5501, direction, seconds: 10 }, 0.5);
  const started = Date.now();
  await sleep(3000);
  const down = await update({ [direction]: { rate: '10mbit' } });
  expect(down.exitCode, down.stderr).toBe(0);
  const downAt = (Date.now() - started) / 1000;
  await sleep(6000 - (Date.now() - started));
  const up = await update({ [direction]: { rate: '40mbit' } });
  expect(up.exitCode, up.stderr).toBe(0);
  const upAt = (Date.now() - started) / 1000;
  const report = await flow;

  const stalled = report.intervals.filter(([, , mbit]) => mbit === 0).length;
  const before = meanMbit(report, 1, 3);
  const lowered = meanMbit(report, Math.ceil((downAt + 1) * 2) / 2, 6);
  const raised = meanMbit(report, Math.ceil((upAt + 1) * 2) / 2, 10);
  console.info(
    `${direction} update on a live flow: 40 Mbit/s ${before.toFixed(2)}, after "update 10mbit" (returned at ${downAt.toFixed(2)} s) ` +
      `${lowered.toFixed(2)}, after "update 40mbit" (returned at ${upAt.toFixed(2)} s) ${raised.toFixed(2)} Mbit/s goodput; ` +
      `stalled 0.5 s intervals: ${stalled}; every 0.5 s: ${report.intervals.map(([, , mbit]) => mbit.toFixed(1)).join(' ')}`,
  );
  expect(stalled).toBe(0);
  return [before, lowered, raised];
}

describe('tcqos update on a running pod', () => {
  it.each(['egress', 'ingress'] as const)('%s: 40 -> 10 -> 40 Mbit/s on a live TCP flow, which never stalls and runs at each new rate 1 s after the command', async (direction) => {
    expect((await call('ADD', conf({ [direction]: { rate: '40mbit' } }))).exitCode).toBe(0);
    // each try ends at 40 Mbit/s, where the next starts; a stall fails at once, never retried
    await expectShaped(() => liveUpdates(direction), [`${direction} before`, 40], [`${direction} lowered`, 10], [`${direction} raised`, 40]);
  });

  it('adds and removes classes and changes peers without re-creating a qdisc; unchanged classes keep their counters', async () => {
    const first = { egress: { rate: '50mbit', classes: [{ name: 'db', rate: '20mbit', peers: [`${peer.ipv4}/32`] }, { name: 'old', rate: '10mbit', peers: ['198.18.50.99/32'] }] } };
    expect((await call('ADD', conf(first))).exitCode).toBe(0);
    await goodputMbit({ podNetns: pod.netns, peerNetns: peer.netns, peerAddress: peer.ipv4, port: 5502, direction: 'egress', seconds: 2 });
    const qdiscsBefore = await rootQdiscs(pod.netns);
    const classBefore = await must('ip', ['netns', 'exec', pod.netns, 'tc', '-s', 'class', 'show', 'dev', 'eth0', 'classid', '7c05:10']);
    const dbBytes = Number(/Sent (\d+) bytes/.exec(classBefore)?.[1]);
    expect(dbBytes).toBeGreaterThan(1_000_000);

    // "old" goes, "web" comes, db's peers move to IPv6, the default changes name and rate.
    const second = {
      egress: {
        rate: '50mbit',
        default: 'rest',
        classes: [
          { name: 'db', rate: '30mbit', peers: [`${peer.ipv6}/128`] },
          { name: 'web', rate: '5mbit', peers: [`${peer.ipv4}/32`], protocol: 'tcp', ports: [5503] },
          { name: 'rest', rate: '15mbit' },
        ],
      },
    };
    const updated = await update(second);
    expect(updated.exitCode, updated.stderr).toBe(0);
    expect(updated.stdout).toMatch(/class change dev eth0 .* classid 7c05:10 /);
    expect(updated.stdout).toMatch(/class del dev eth0 classid 7c05:11/);
    expect(updated.stdout).not.toMatch(/qdisc (add|del) dev eth0 root/);

    const qdiscsAfter = await rootQdiscs(pod.netns);
    expect(qdiscsAfter.map((q) => q.handle)).toEqual(qdiscsBefore.map((q) => q.handle));
    expect(qdiscsAfter[0]!.bytes, 'the root qdisc kept its counters: it was not re-created').toBeGreaterThanOrEqual(qdiscsBefore[0]!.bytes);
    const classAfter = await must('ip', ['netns', 'exec', pod.netns, 'tc', '-s', 'class', 'show', 'dev', 'eth0', 'classid', '7c05:10']);
    expect(Number(/Sent (\d+) bytes/.exec(classAfter)?.[1]), 'db kept its counters').toBeGreaterThanOrEqual(dbBytes);
    expect(classAfter).toMatch(/rate 30Mbit/);

    // The new rules are live: web's port reaches web (5 Mbit/s), IPv6 reaches db (30 Mbit/s).
    await expectShaped(() => goodputMbit({ podNetns: pod.netns, peerNetns: peer.netns, peerAddress: peer.ipv4, port: 5503, direction: 'egress', seconds: 3 }), ['web, a new class', 5]);
    await expectShaped(() => goodputMbit({ podNetns: pod.netns, peerNetns: peer.netns, peerAddress: peer.ipv6, port: 5504, direction: 'egress', seconds: 3 }), ['db over IPv6', 30, TCP6_GOODPUT_RATIO]);

    const checked = await call('CHECK', conf(first));
    expect(checked.exitCode, checked.stdout).toBe(0);
  });

  it('CHECK passes after an update and fails on real drift', async () => {
    const policy = { egress: { rate: '40mbit' }, ingress: { rate: '40mbit' } };
    expect((await call('ADD', conf(policy))).exitCode).toBe(0);
    expect((await update({ egress: { rate: '20mbit' }, ingress: { rate: '30mbit' } })).exitCode).toBe(0);
    const afterUpdate = await call('CHECK', conf(policy));
    expect(afterUpdate.exitCode, afterUpdate.stdout).toBe(0);
    await must('ip', ['netns', 'exec', pod.netns, 'tc', 'class', 'change', 'dev', 'eth0', 'parent', '7c05:1', 'classid', '7c05:10', 'htb', 'rate', '35mbit']);
    const drifted = await call('CHECK', conf(policy));
    expect(drifted.json).toMatchObject({ code: 104 });
    expect(String(drifted.json?.['msg'])).toMatch(/class "default" \(7c05:10\) rate is 35mbit, expected 20mbit/);
  });

  it('an invalid update is refused naming the field and changes nothing; an unknown attachment is named', async () => {
    expect((await call('ADD', conf({ egress: { rate: '40mbit' } }))).exitCode).toBe(0);
    const refused = await update({ egress: { rate: '40mbit', classes: [{ name: 'a', rate: '50mbit' }] } });
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toMatch(/^tcqos update: invalid tcqos configuration: egress\.classes(\[0\]\.rate|): .*50mbit/);
    expect((await call('CHECK', conf({ egress: { rate: '40mbit' } }))).exitCode).toBe(0);
    const missing = await update({ egress: { rate: '10mbit' } }, 'no-such-container');
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toMatch(/no attachment no-such-container\/eth0 is registered/);
  });
});

describe('tcqos stats', () => {
  it('class and direction counters match iperf3\'s bytes plus header overhead within 2%', async () => {
    expect((await call('ADD', conf({ egress: { rate: '50mbit', classes: [{ name: 'db', rate: '20mbit', peers: [`${peer.ipv4}/32`] }] } }))).exitCode).toBe(0);
    const before = JSON.parse((await operator(runner, ['stats', '--json', '--interval', '0', '--container', 'live-1'])).stdout) as StatsJson;
    const flow = await flowWithIntervals({ podNetns: pod.netns, peerNetns: peer.netns, peerAddress: peer.ipv4, port: 5505, direction: 'egress', seconds: 3 });
    const after = JSON.parse((await operator(runner, ['stats', '--json', '--interval', '0', '--container', 'live-1'])).stdout) as StatsJson;
    const db = (s: StatsJson) => s[0]!.directions[0]!.classes.find((c) => c.name === 'db')!;
    const counted = db(after).bytes - db(before).bytes;
    // 1448 payload bytes per 1514-byte frame (Ethernet, IPv4 and TCP with timestamps); the
    // handshake, FIN and the retransmitted segments add a little on top.
    const expected = (flow.bytesReceived / 1448) * 1514;
    console.info(`stats: db class counted ${counted} bytes for the ${flow.bytesReceived} payload bytes iperf3 received: ${((counted / expected) * 100).toFixed(2)}% of the expected ${Math.round(expected)} wire bytes`);
    expect(Math.abs(counted - expected) / expected).toBeLessThan(0.02);
    const direction = after[0]!.directions[0]!;
    expect(direction.bytes - before[0]!.directions[0]!.bytes).toBeGreaterThanOrEqual(counted);
    expect(direction.classes.map((c) => c.name).sort()).toEqual(['db', 'default']);
  });

  it('the table names every class with human units', async () => {
    expect((await call('ADD', conf({ egress: { rate: '50mbit', classes: [{ name: 'db', rate: '20mbit', peers: [`${peer.ipv4}/32`] }] }, ingress: { rate: '1gbit' } }))).exitCode).toBe(0);
    const table = await operator(runner, ['stats', '--interval', '0.2']);
    expect(table.exitCode, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^ATTACHMENT\s+IFACE\s+DIRECTION\s+CLASS\s+RATE\s+CEIL\s+SENT/);
    expect(table.stdout).toMatch(/live-1\s+eth0\s+egress\s+\(total\)\s+50 Mbit\/s/);
    expect(table.stdout).toMatch(/\s+db\s+20 Mbit\/s\s+20 Mbit\/s/);
    expect(table.stdout).toMatch(/ingress\s+\(total\)\s+1 Gbit\/s/);
    const listed = await operator(runner, ['list']);
    expect(listed.stdout).toMatch(/live-1\s+-\s+eth0\s+live\s+50 Mbit\/s \(config, 2 classes\)\s+1 Gbit\/s \(config, 1 class\)/);
  });

  it('--prometheus output passes promtool and node_exporter serves it from its textfile directory', async () => {
    expect((await call('ADD', conf({ egress: { rate: '50mbit', classes: [{ name: 'db', rate: '20mbit', peers: [`${peer.ipv4}/32`] }] } }))).exitCode).toBe(0);
    await goodputMbit({ podNetns: pod.netns, peerNetns: peer.netns, peerAddress: peer.ipv4, port: 5506, direction: 'egress', seconds: 1, omitSeconds: 0 });
    const dir = mkdtempSync(join(tmpdir(), 'tqops-textfile-'));
    try {
      const written = await operator(runner, ['stats', '--prometheus', '--output', join(dir, 'tcqos.prom')]);
      expect(written.exitCode, written.stderr).toBe(0);
      const text = readFileSync(join(dir, 'tcqos.prom'), 'utf8');
      const linted = await run('promtool', ['check', 'metrics'], { input: text });
      expect(linted, 'promtool accepts the output').toMatchObject({ exitCode: 0, stdout: '', stderr: '' });
      const dbLine = /^tcqos_class_bytes_total\{[^}]*class="db"[^}]*\} (\d+)$/m.exec(text);
      expect(Number(dbLine?.[1])).toBeGreaterThan(100_000);
      const exporter = await startNodeExporter(dir);
      try {
        const served = await exporter.metrics();
        // node_exporter prints large values in exponent form (2.534601e+06)
        const servedDb = /^tcqos_class_bytes_total\{[^}]*class="db"[^}]*\} (\S+)$/m.exec(served);
        expect(Number(servedDb?.[1]), 'node_exporter serves the value written').toBe(Number(dbLine![1]));
        expect(served).toMatch(/^# TYPE tcqos_class_bytes_total counter$/m);
      } finally {
        await exporter.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

interface StatsJson extends Array<{ directions: Array<{ bytes: number; classes: Array<{ name: string; bytes: number }> }> }> {}

describe('GC', () => {
  it('removes the shaping and record of attachments of its network the runtime no longer lists; other networks are untouched', async () => {
    const [other, otherPeer] = await bed.vethPair('gc-other', 'gc-peer', 4, 5);
    const [gone] = await bed.vethPair('gc-gone', 'gc-gpeer', 6, 7);
    try {
      const policy = { egress: { rate: '10mbit' } };
      expect((await call('ADD', conf(policy, pod, 'net-a'), pod, 'keep-a')).exitCode).toBe(0);
      expect((await call('ADD', conf(policy, other, 'net-a'), other, 'stale-a')).exitCode).toBe(0);
      expect((await call('ADD', conf(policy, otherPeer, 'net-b'), otherPeer, 'stale-b')).exitCode).toBe(0);
      expect((await call('ADD', conf(policy, gone, 'net-a'), gone, 'gone-a')).exitCode).toBe(0);
      await must('ip', ['netns', 'del', gone.netns]);

      const collected = await invoke(runner, {
        command: 'GC',
        config: { cniVersion: '1.1.0', name: 'net-a', type: 'tcqos', ...policy, 'cni.dev/valid-attachments': [{ containerID: 'keep-a', ifname: 'eth0' }] },
      });
      expect(collected.exitCode, collected.stdout).toBe(0);
      const records = readdirSync(join(TEST_STATE_DIR, 'attachments')).sort();
      expect(records).toEqual(['eth0@keep-a.json', 'peer0@stale-b.json']);
      expect((await rootQdiscs(other.netns)).length, 'stale-a lost its shaping').toBe(0);
      expect((await rootQdiscs(otherPeer.netns)).length, 'net-b is not this GC\'s').toBe(1);
      expect((await rootQdiscs(pod.netns)).length, 'keep-a is valid').toBe(1);
    } finally {
      await call('DEL', conf({}, otherPeer, 'net-b'), otherPeer, 'stale-b');
      await call('DEL', conf({}, pod, 'net-a'), pod, 'keep-a');
    }
  });
});

describe('uplink admission', () => {
  it('ten parallel ADDs of 15 Mbit/s on a 100 Mbit/s uplink admit exactly six; DEL and a lowering update free the share', async () => {
    const pods: Pod[] = [];
    for (let i = 0; i < 10; i++) pods.push((await bed.vethPair(`adm${i}`, `admp${i}`, 20 + 2 * i, 21 + 2 * i))[0]);
    const entry = { uplink: { name: 'up0', capacity: '100mbit', maxGuaranteePerAttachment: '95mbit' }, egress: { rate: '15mbit' } };
    const add = (target: Pod, i: number) => call('ADD', conf(entry, target, 'adm'), target, `adm-${i}`);
    try {
      const results = await Promise.all(pods.map(add));
      const admitted = results.filter((r) => r.exitCode === 0).length;
      const refused = results.filter((r) => r.json?.['code'] === 105);
      console.info(`admission: ${admitted} of 10 parallel ADDs admitted on 100 Mbit/s (15 Mbit/s each)`);
      expect(admitted).toBe(6);
      expect(refused).toHaveLength(4);
      expect(String(refused[0]!.json?.['msg'])).toMatch(/uplink up0 \(capacity 100mbit, reserve 5mbit\) cannot guarantee 15mbit of egress: 90mbit is already guaranteed to other attachments, 5mbit is left/);
      for (const [i, result] of results.entries()) {
        if (result.exitCode !== 0) expect((await rootQdiscs(pods[i]!.netns)).length, 'a refused ADD installs nothing').toBe(0);
      }
      const listed = await operator(runner, ['list']);
      expect(listed.stdout).toMatch(/up0\s+100 Mbit\/s\s+5 Mbit\/s\s+no\s+90 Mbit\/s \(90\.0%\)/);

      const firstIn = results.findIndex((r) => r.exitCode === 0);
      const firstOut = results.findIndex((r) => r.exitCode !== 0);
      expect((await call('DEL', conf(entry, pods[firstIn]!, 'adm'), pods[firstIn]!, `adm-${firstIn}`)).exitCode).toBe(0);
      expect((await add(pods[firstOut]!, firstOut)).exitCode, 'DEL freed 15 Mbit/s').toBe(0);
      const secondOut = results.findIndex((r, i) => r.exitCode !== 0 && i !== firstOut);
      expect((await add(pods[secondOut]!, secondOut)).json).toMatchObject({ code: 105 });
      const secondIn = results.findIndex((r, i) => r.exitCode === 0 && i !== firstIn);
      const over = await update({ ...entry, egress: { rate: '30mbit' } }, `adm-${secondIn}`);
      expect(over.exitCode).toBe(1);
      expect(over.stderr).toMatch(/uplink up0 .* cannot guarantee 30mbit of egress/);
      expect((await update({ ...entry, egress: { rate: '5mbit' } }, `adm-${secondIn}`)).exitCode).toBe(0);
      expect((await add(pods[secondOut]!, secondOut)).exitCode, 'a lowering update freed 10 Mbit/s').toBe(0);
    } finally {
      await Promise.all(pods.map((target, i) => call('DEL', conf({}, target, 'adm'), target, `adm-${i}`)));
    }
  });
});

describe('a corrupted registry record', () => {
  it('is reported by list, replaced by ADD, removed by DEL, dropped by GC; none of them fails', async () => {
    const file = join(TEST_STATE_DIR, 'attachments', 'eth0@live-1.json');
    expect((await call('ADD', conf({ egress: { rate: '10mbit' } }))).exitCode).toBe(0);
    writeFileSync(file, '{"version": 1, "containerId": "live-1", "ifn');
    const listed = await operator(runner, ['list']);
    expect(listed.exitCode).toBe(0);
    expect(listed.stderr).toMatch(/unreadable registry record .*eth0@live-1\.json: not valid JSON/);
    const updated = await update({ egress: { rate: '20mbit' } });
    expect(updated.exitCode).toBe(1);
    expect(updated.stderr).toMatch(/cannot be read .*DEL and ADD the attachment again/);
    expect((await call('CHECK', conf({ egress: { rate: '10mbit' } }))).exitCode, 'CHECK falls back to the configuration').toBe(0);
    expect((await call('ADD', conf({ egress: { rate: '10mbit' } }))).exitCode).toBe(0);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ containerId: 'live-1', ifname: 'eth0' });
    writeFileSync(file, 'garbage');
    expect((await call('DEL', conf({}))).exitCode).toBe(0);
    expect(readdirSync(join(TEST_STATE_DIR, 'attachments'))).not.toContain('eth0@live-1.json');
    writeFileSync(file, 'garbage');
    expect((await invoke(runner, { command: 'GC', config: { cniVersion: '1.1.0', name: 'live', type: 'tcqos', 'cni.dev/valid-attachments': [] } })).exitCode).toBe(0);
    expect(readdirSync(join(TEST_STATE_DIR, 'attachments'))).not.toContain('eth0@live-1.json');
  });
});
