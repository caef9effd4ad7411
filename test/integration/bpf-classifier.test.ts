/**
 * The generated uplink classifier against the real kernel: loaded by tc from the object tcqos writes,
 * on the clsact egress of a veth standing for a macvlan master, in front of an HTB with one class per
 * pod. Senders are macvlan pods' processes in kubelet-shaped cgroups (both drivers), with only
 * CAP_NET_RAW; the class byte counters say where their packets went.
 */
import { randomUUID } from 'node:crypto';
import { execa } from 'execa';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifierObject, CLASSIFIER_SECTION, kernelTags, type CgroupRule } from '../../src/bpf/classifier.ts';
import { findPodCgroup, type PodCgroup } from '../../src/bpf/cgroup.ts';
import { must } from '../helpers/run.ts';
import { expectShaped, WIRE_RATIO } from '../helpers/iperf.ts';
import { Testbed, type Pod } from '../helpers/testbed.ts';
import { flood, received, TestCgroups, tool, type FloodReport } from '../helpers/tools.ts';
import { TEST_STATE_DIR } from '../helpers/plugin.ts';

const bed = new Testbed('tqbpf', 90);
let cgroups: TestCgroups;
let node: string;
let pod: Pod;
let outside: Pod;
let outsideMac: string;

/** Pod A: cgroupfs driver, burstable; pod B: systemd driver, guaranteed; each sends from a container below. */
const uidA = randomUUID();
const uidB = randomUUID();
let podA: PodCgroup;
let podB: PodCgroup;
let containerA: string;
let containerB: string;
let elsewhere: string;

const CLASS_A = 0x1_0010;
const CLASS_B = 0x1_0020;
const HTB_HANDLE = 0x1_0000;
const MASTER = 'mst0';

beforeAll(async () => {
  await bed.removeLeftovers();
  cgroups = await TestCgroups.create('tqbpf');
  // The node holds the master: a veth whose far end is the outside world.
  node = await bed.netns('node');
  const out = await bed.netns('out');
  await must('ip', ['-n', node, 'link', 'add', 'name', MASTER, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', out]);
  await must('ip', ['-n', node, 'link', 'set', MASTER, 'up']);
  await must('ip', ['-n', out, 'addr', 'add', `${bed.v4(9)}/24`, 'dev', 'eth0']);
  await must('ip', ['-n', out, '-6', 'addr', 'add', `${bed.v6(9)}/64`, 'dev', 'eth0', 'nodad']);
  await must('ip', ['-n', out, 'link', 'set', 'eth0', 'up']);
  outside = { netns: out, path: `/var/run/netns/${out}`, ifname: 'eth0', ipv4: bed.v4(9), ipv6: bed.v6(9) };
  outsideMac = (JSON.parse(await must('ip', ['-n', out, '-j', 'link', 'show', 'dev', 'eth0'])) as Array<{ address: string }>)[0]!.address;

  const podNs = await bed.netns('pod');
  await must('ip', ['-n', node, 'link', 'add', 'link', MASTER, 'name', 'mvpod', 'type', 'macvlan', 'mode', 'bridge']);
  await must('ip', ['-n', node, 'link', 'set', 'mvpod', 'netns', podNs]);
  await must('ip', ['-n', podNs, 'link', 'set', 'mvpod', 'name', 'eth0']);
  await must('ip', ['-n', podNs, 'addr', 'add', `${bed.v4(2)}/24`, 'dev', 'eth0']);
  await must('ip', ['-n', podNs, '-6', 'addr', 'add', `${bed.v6(2)}/64`, 'dev', 'eth0', 'nodad']);
  await must('ip', ['-n', podNs, 'link', 'set', 'eth0', 'up']);
  pod = { netns: podNs, path: `/var/run/netns/${podNs}`, ifname: 'eth0', ipv4: bed.v4(2), ipv6: bed.v6(2) };
  // Neighbours known up front: the counters then hold the test's packets only.
  for (const [ns, ip, dev] of [[podNs, outside.ipv4, 'eth0'], [podNs, outside.ipv6, 'eth0']] as const) {
    await must('ip', ['-n', ns, 'neigh', 'replace', ip, 'lladdr', outsideMac, 'dev', dev, 'nud', 'permanent']);
  }

  // An HTB that would pass everything: only which class counts what matters here.
  await must('tc', ['-n', node, 'qdisc', 'add', 'dev', MASTER, 'root', 'handle', '1:', 'htb', 'default', '30', 'direct_qlen', '0']);
  for (const minor of ['10', '20', '30']) {
    await must('tc', ['-n', node, 'class', 'add', 'dev', MASTER, 'parent', '1:', 'classid', `1:${minor}`, 'htb', 'rate', '10gbit', 'quantum', '60000']);
  }
  await must('tc', ['-n', node, 'qdisc', 'add', 'dev', MASTER, 'clsact']);

  const root = cgroups.name;
  const systemdRoot = root.replaceAll('-', '_');
  cgroups.make(`${root}/kubepods/burstable/pod${uidA}`);
  containerA = cgroups.make(`${root}/kubepods/burstable/pod${uidA}/ctr-a`);
  const sliceB = `${systemdRoot}.slice/${systemdRoot}-kubepods.slice/${systemdRoot}-kubepods-pod${uidB.replaceAll('-', '_')}.slice`;
  containerB = cgroups.make(`${sliceB}/cri-containerd-b.scope`);
  elsewhere = cgroups.make(`${root}/elsewhere`);
  podA = findPodCgroup(uidA, { cgroupRoot: `/${root}` })!;
  podB = findPodCgroup(uidB, { cgroupRoot: `/${root}` })!;
});

afterAll(async () => {
  await bed.destroy();
  await cgroups?.destroy();
});

/** Loads the classifier for `rules` on the master's egress, replacing the one before. */
async function load(rules: readonly CgroupRule[]): Promise<void> {
  const file = join(TEST_STATE_DIR, `classifier-${rules.length}.o`);
  writeFileSync(file, classifierObject(rules));
  await must('tc', ['-n', node, 'filter', 'replace', 'dev', MASTER, 'egress', 'pref', '1', 'handle', '1', 'bpf', 'da', 'obj', file, 'sec', CLASSIFIER_SECTION]);
}

async function unload(): Promise<void> {
  await must('tc', ['-n', node, 'filter', 'del', 'dev', MASTER, 'egress', 'pref', '1']);
}

const podRules = (): CgroupRule[] => [
  { level: podA.level, cgroupId: podA.id, classid: CLASS_A },
  { level: podB.level, cgroupId: podB.id, classid: CLASS_B },
];

/** Packets each HTB class has seen (sent or dropped), by class id ("1:10"). */
async function classPackets(): Promise<Map<string, number>> {
  const text = await must('tc', ['-n', node, '-s', 'class', 'show', 'dev', MASTER]);
  const counts = new Map<string, number>();
  for (const found of text.matchAll(/^class htb (\S+) .*\n Sent \d+ bytes (\d+) pkt \(dropped (\d+)/gm)) {
    counts.set(found[1]!, Number(found[2]) + Number(found[3]));
  }
  return counts;
}

/** Where one sender's packets went: the growth of each class's packet count while it sent. */
async function classesOf(send: () => Promise<FloodReport>): Promise<{ sent: FloodReport; into: Record<string, number> }> {
  const before = await classPackets();
  const sent = await send();
  const after = await classPackets();
  const into: Record<string, number> = {};
  for (const [id, count] of after) into[id] = count - (before.get(id) ?? 0);
  return { sent, into };
}

/** All of the sender's packets reached `classId`, and (next to nothing) any other class. */
function expectAllIn(label: string, result: { sent: FloodReport; into: Record<string, number> }, classId: string): void {
  console.info(`${label}: sent ${result.sent.packets} packets (${result.sent.mbit} Mbit/s); per class ${JSON.stringify(result.into)}`);
  expect(result.sent.packets, label).toBeGreaterThan(1000);
  expect(result.into[classId], label).toBeGreaterThanOrEqual(result.sent.packets);
  for (const [id, count] of Object.entries(result.into)) {
    if (id !== classId) expect(count, `${label}: class ${id}`).toBeLessThan(10);
  }
}

const udp = (to: string, ...extra: string[]) => ['udp', '--to', to, '--port', '9000', '--size', '1000', ...extra];

describe('the generated uplink classifier', () => {
  it('finds kubelet-shaped pod cgroups of both drivers, with their inode numbers as ids and their depth as level', () => {
    expect(podA.path).toBe(join(cgroups.mount, cgroups.name, 'kubepods', 'burstable', `pod${uidA}`));
    expect(podA.level).toBe(4);
    expect(podB.path.endsWith(`-kubepods-pod${uidB.replaceAll('-', '_')}.slice`)).toBe(true);
    expect(podB.level).toBe(3);
    expect(podA.id).not.toBe(podB.id);
  });

  it('loads with tc, and the kernel reports the tag computed from the rules', async () => {
    await load(podRules());
    const filters = JSON.parse(await must('tc', ['-n', node, '-j', 'filter', 'show', 'dev', MASTER, 'egress'])) as Array<{
      options?: { 'direct-action'?: boolean; prog?: { tag: string; name: string } };
    }>;
    const loaded = filters.find((filter) => filter.options?.prog)!.options!;
    expect(loaded['direct-action']).toBe(true);
    expect(loaded.prog!.name).toBe('tcqos_uplink');
    const tags = kernelTags(podRules());
    expect([tags.sha256, tags.sha1]).toContain(loaded.prog!.tag);
    expect(loaded.prog!.tag).not.toBe(kernelTags([]).sha256);
  });

  it('puts UDP from each pod\'s container into that pod\'s class, and other senders into the default class', async () => {
    await load(podRules());
    expectAllIn('pod A, IPv4', await classesOf(() => flood(pod.netns, 1, udp(outside.ipv4), { cgroup: containerA })), '1:10');
    expectAllIn('pod B, IPv6', await classesOf(() => flood(pod.netns, 1, udp(outside.ipv6), { cgroup: containerB })), '1:20');
    expectAllIn('no pod', await classesOf(() => flood(pod.netns, 1, udp(outside.ipv4), { cgroup: elsewhere })), '1:30');
  });

  it('puts a TCP flow\'s packets into the pod\'s class, both ways (data, and the ACKs its socket sends from softirq)', async () => {
    await load(podRules());
    for (const reverse of [false, true]) {
      const server = execa('ip', ['netns', 'exec', outside.netns, 'iperf3', '-s', '-1', '-p', '5990'], { reject: false, timeout: 20_000 });
      await sleep(300);
      const before = await classPackets();
      await must(await tool('cgexec'), [containerB, 'ip', 'netns', 'exec', pod.netns, 'iperf3', '-c', outside.ipv4, '-p', '5990', '-t', '1', ...(reverse ? ['-R'] : [])]);
      await server;
      const after = await classPackets();
      const into = (id: string) => after.get(id)! - (before.get(id) ?? 0);
      console.info(`TCP ${reverse ? 'to' : 'from'} pod B: ${into('1:20')} packets in 1:20, ${into('1:30')} in 1:30`);
      expect(into('1:20')).toBeGreaterThan(1000);
      expect(into('1:10')).toBe(0);
      expect(into('1:30')).toBeLessThan(10);
    }
  });

  it('a cgroup id is its directory\'s inode number: a rule naming the sender\'s own cgroup (bpf_skb_cgroup_id\'s) matches', async () => {
    // At the socket's own depth the ancestor is the socket's cgroup itself: what bpf_skb_cgroup_id() reports.
    const own = { level: podA.level + 1, cgroupId: statSync(containerA, { bigint: true }).ino, classid: CLASS_B };
    await load([own]);
    expectAllIn('own cgroup of pod A\'s sender', await classesOf(() => flood(pod.netns, 1, udp(outside.ipv4), { cgroup: containerA })), '1:20');
  });

  it('a sender\'s SO_PRIORITY never picks the class: naming another pod\'s class or the HTB handle', async () => {
    // Without the classifier HTB takes the priority as the class: the escape this closes.
    await unload();
    expectAllIn('no classifier, priority 1:20', await classesOf(() => flood(pod.netns, 1, udp(outside.ipv4, '--priority', String(CLASS_B)), { cgroup: containerA })), '1:20');
    await load(podRules());
    expectAllIn('pod A, priority 1:20', await classesOf(() => flood(pod.netns, 1, udp(outside.ipv4, '--priority', String(CLASS_B)), { cgroup: containerA })), '1:10');
    expectAllIn('pod A, priority = HTB handle', await classesOf(() => flood(pod.netns, 1, udp(outside.ipv4, '--priority', String(HTB_HANDLE)), { cgroup: containerA })), '1:10');
    expectAllIn('no pod, priority 1:10', await classesOf(() => flood(pod.netns, 1, udp(outside.ipv4, '--priority', String(CLASS_A)), { cgroup: elsewhere })), '1:30');
  });

  it('classifies raw frames by their sender\'s cgroup: PACKET_QDISC_BYPASS, forged source MAC and addresses, non-IP', async () => {
    await load(podRules());
    const forged = ['--src-mac', '02:00:00:00:66:66', '--bypass', '--priority', String(HTB_HANDLE)];
    expectAllIn('pod A, bypass, forged IPv4 source', await classesOf(() =>
      flood(pod.netns, 1, ['packet', '--dev', 'eth0', '--dst-mac', outsideMac, '--dst-ip', outside.ipv4, '--src-ip', '198.18.90.66', ...forged], { cgroup: containerA })), '1:10');
    expectAllIn('pod B, bypass, forged IPv6 source', await classesOf(() =>
      flood(pod.netns, 1, ['packet', '--dev', 'eth0', '--dst-mac', outsideMac, '--dst-ip', outside.ipv6, '--src-ip', bed.v6(0x66), ...forged], { cgroup: containerB })), '1:20');
    expectAllIn('pod B, ethertype 0x88b5', await classesOf(() =>
      flood(pod.netns, 1, ['packet', '--dev', 'eth0', '--dst-mac', outsideMac, '--ethertype', '0x88b5', ...forged], { cgroup: containerB })), '1:20');
  });

  it('a pod\'s class capped at 10 Mbit/s on the master holds every flood of the pod to the cap, bypass and forged frames included', async () => {
    await load(podRules());
    const cap = 10;
    const setClassA = (rate: string) =>
      must('tc', ['-n', node, 'class', 'change', 'dev', MASTER, 'parent', '1:', 'classid', '1:10', 'htb', 'rate', rate, 'ceil', rate, 'quantum', '1514']);
    await setClassA(`${cap}mbit`);
    // A short leaf queue: what is still queued when a flood ends drains in milliseconds, not seconds.
    await must('tc', ['-n', node, 'qdisc', 'add', 'dev', MASTER, 'parent', '1:10', 'handle', '110:', 'pfifo', 'limit', '10']);
    try {
      const attacks: Array<[string, string[]]> = [
        ['UDP, priority = HTB handle', udp(outside.ipv4, '--priority', String(HTB_HANDLE))],
        ['bypass, forged MAC and IPv4 source', ['packet', '--dev', 'eth0', '--dst-mac', outsideMac, '--dst-ip', outside.ipv4, '--src-ip', '198.18.90.66', '--src-mac', '02:00:00:00:66:66', '--bypass']],
        ['bypass, ethertype 0x88b5', ['packet', '--dev', 'eth0', '--dst-mac', outsideMac, '--ethertype', '0x88b5', '--bypass']],
      ];
      // A raw socket waits for its queued frames (its send buffer is full): it sends what the class lets through.
      for (const [name, args] of attacks) {
        await expectShaped(async () => {
          const got = await received(outside.netns, outside.ifname, () => flood(pod.netns, 2, args, { cgroup: containerA }));
          console.info(`pod A capped at ${cap} Mbit/s on the master, ${name}: sent ${got.sent.mbit} Mbit/s, received ${got.mbit.toFixed(2)} Mbit/s`);
          return got.mbit;
        }, [name, cap, WIRE_RATIO]);
      }
    } finally {
      await must('tc', ['-n', node, 'qdisc', 'del', 'dev', MASTER, 'parent', '1:10', 'handle', '110:']);
      await setClassA('10gbit');
    }
  });

  it('packets without a socket reach the default class: forwarded by the pod, even from a sender in the pod\'s cgroup', async () => {
    // A namespace routed through the pod (a pod with CAP_NET_ADMIN can build this inside its own
    // netns): IP receive orphans the packet, so the master sees no socket and no cgroup.
    const behind = await bed.netns('behind');
    await must('ip', ['-n', pod.netns, 'link', 'add', 'name', 'fwd0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', behind]);
    await must('ip', ['-n', pod.netns, 'addr', 'add', '198.18.93.1/24', 'dev', 'fwd0']);
    await must('ip', ['-n', pod.netns, 'link', 'set', 'fwd0', 'up']);
    await must('ip', ['netns', 'exec', pod.netns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    await must('ip', ['-n', behind, 'addr', 'add', '198.18.93.2/24', 'dev', 'eth0']);
    await must('ip', ['-n', behind, 'link', 'set', 'eth0', 'up']);
    await must('ip', ['-n', behind, 'route', 'add', 'default', 'via', '198.18.93.1']);
    await load(podRules());
    expectAllIn('forwarded by pod A', await classesOf(() => flood(behind, 1, udp(outside.ipv4), { cgroup: containerA })), '1:30');
  });

  it('with no rules, the program only resets priorities: everything goes to the default class', async () => {
    await load([]);
    expectAllIn('pod A, priority 1:10, no rules', await classesOf(() => flood(pod.netns, 1, udp(outside.ipv4, '--priority', String(CLASS_A)), { cgroup: containerA })), '1:30');
    expectAllIn('pod A, bypass, priority = HTB handle, no rules', await classesOf(() =>
      flood(pod.netns, 1, ['packet', '--dev', 'eth0', '--dst-mac', outsideMac, '--dst-ip', outside.ipv4, '--bypass', '--priority', String(HTB_HANDLE)], { cgroup: containerA })), '1:30');
  });
});
