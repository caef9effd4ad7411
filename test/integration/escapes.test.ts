/**
 * Limits a pod author cannot escape: senders holding only CAP_NET_RAW (uid 65534, as a pod's
 * default capabilities allow) attack pods capped at 10 Mbit/s egress, and what reaches the outside
 * is counted on its interface (frames, Ethernet header included). Three kinds of pod:
 * - a veth pod, shaped on the host end of its veth (hostSide): nothing it does inside reaches that;
 * - a macvlan pod on an enforced uplink: its class there has ceil = its cap and the classifier
 *   picks the class from the sending socket's cgroup, which raw frames cannot forge;
 * - a macvlan pod without the uplink's tree: shaped inside its netns only, where PACKET_QDISC_BYPASS
 *   skips the qdisc — the documented limit (docs/security.md), measured here so the docs stay true.
 * The plugin runs in a throwaway "node" namespace; "outside" is another namespace behind the node's
 * uplink (up0), routed for the veth pod, on the same L2 segment for the macvlan pods.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { invoke, podCniArgs, prevResultFor } from '../helpers/plugin.ts';
import { inNetns, must } from '../helpers/run.ts';
import { Testbed, type Pod } from '../helpers/testbed.ts';
import { ifbName } from '../../src/tc/handles.ts';
import { flood, received, TestCgroups, type FloodReport } from '../helpers/tools.ts';

const bed = new Testbed('tqesc', 134);
const CAP_MBIT = 10;
const SECONDS = 3;
/** tcqos's HTB handle and a flat limit's class, as SO_PRIORITY values. */
const HTB_HANDLE = 0x7c05_0000;
const FLAT_CLASS = 0x7c05_0010;
const OUTSIDE_V4 = '198.18.134.1';
const VETH_NET = '198.18.135';

let node: string;
let outside: string;
let cgroups: TestCgroups;

interface Target {
  readonly kind: string;
  readonly pod: Pod;
  /** Where frames go first: the host end (veth pod) or the outside's interface (macvlan pods). */
  readonly nextHopMac: string;
  readonly cgroup: string;
}

const targets: Target[] = [];

async function macOf(netns: string, ifname: string): Promise<string> {
  return (JSON.parse(await must('ip', ['-n', netns, '-j', 'link', 'show', 'dev', ifname])) as Array<{ address: string }>)[0]!.address;
}

async function podCgroup(): Promise<{ uid: string; container: string }> {
  const uid = randomUUID();
  return { uid, container: cgroups.make(`${cgroups.name}/kubepods/besteffort/pod${uid}/ctr`) };
}

async function add(pod: Pod, name: string, uid: string, extra: object, prevResult: object): Promise<void> {
  const config = { cniVersion: '1.0.0', name: 'escapes', type: 'tcqos', cgroupRoot: `/${cgroups.name}`, egress: { rate: `${CAP_MBIT}mbit` }, ...extra, prevResult };
  const added = await invoke(node, {
    command: 'ADD',
    config,
    netns: pod.path,
    containerId: `esc-${name}`,
    extraEnv: { CNI_ARGS: podCniArgs({ namespace: 'esc', name, uid }) },
  });
  expect(added.exitCode, added.stdout).toBe(0);
}

beforeAll(async () => {
  await bed.removeLeftovers();
  cgroups = await TestCgroups.create('tqesc');
  node = await bed.netns('node');
  outside = await bed.netns('out');
  await must('ip', ['-n', node, 'link', 'add', 'name', 'up0', 'type', 'veth', 'peer', 'name', 'out0', 'netns', outside]);
  await must('ip', ['-n', node, 'addr', 'add', '198.18.134.2/24', 'dev', 'up0']);
  await must('ip', ['-n', outside, 'addr', 'add', `${OUTSIDE_V4}/24`, 'dev', 'out0']);
  for (const [netns, dev] of [[node, 'up0'], [outside, 'out0']] as const) await must('ip', ['-n', netns, 'link', 'set', dev, 'up']);
  await must('ip', ['-n', outside, 'route', 'add', `${VETH_NET}.0/24`, 'via', '198.18.134.2']);
  await inNetns(node, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  const outsideMac = await macOf(outside, 'out0');

  // a veth pod, routed through the node (as ptp makes it)
  const veth = await bed.netns('veth');
  await must('ip', ['-n', node, 'link', 'add', 'name', 'vhesc', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', veth]);
  await must('ip', ['-n', node, 'addr', 'add', `${VETH_NET}.1/24`, 'dev', 'vhesc']);
  await must('ip', ['-n', node, 'link', 'set', 'vhesc', 'up']);
  await must('ip', ['-n', veth, 'addr', 'add', `${VETH_NET}.11/24`, 'dev', 'eth0']);
  await must('ip', ['-n', veth, 'link', 'set', 'eth0', 'up']);
  await must('ip', ['-n', veth, 'route', 'add', 'default', 'via', `${VETH_NET}.1`]);
  const vethPod: Pod = { netns: veth, path: `/var/run/netns/${veth}`, ifname: 'eth0', ipv4: `${VETH_NET}.11`, ipv6: '' };
  const vethCgroup = await podCgroup();
  const ptpResult = { cniVersion: '1.0.0', interfaces: [{ name: 'vhesc' }, { name: 'eth0', sandbox: vethPod.path }], ips: [{ address: `${VETH_NET}.11/24`, interface: 1 }] };
  await add(vethPod, 'veth', vethCgroup.uid, {}, ptpResult);
  targets.push({ kind: 'veth pod (host side)', pod: vethPod, nextHopMac: await macOf(node, 'vhesc'), cgroup: vethCgroup.container });

  // a macvlan pod on the enforced uplink, and one with the uplink's tree off
  const enforced = await bed.macvlanPod(node, 'mvup', 11, 'eth0', 'up0');
  const enforcedCgroup = await podCgroup();
  const uplink = { name: 'up0', capacity: '1gbit', enforce: true };
  await add(enforced, 'mvup', enforcedCgroup.uid, { uplink, egress: { rate: `${CAP_MBIT}mbit` } }, prevResultFor('1.0.0', enforced.path));
  targets.push({ kind: 'macvlan pod (enforced uplink)', pod: enforced, nextHopMac: outsideMac, cgroup: enforcedCgroup.container });
});

afterAll(async () => {
  await bed.destroy();
  await cgroups?.destroy();
});

interface Attack {
  readonly name: string;
  readonly args: (target: Target) => string[];
}

const FORGED_MAC = ['--src-mac', '02:00:00:00:66:66'];
const ATTACKS: Attack[] = [
  { name: 'SO_PRIORITY = the HTB handle', args: () => ['udp', '--to', OUTSIDE_V4, '--port', '9', '--priority', String(HTB_HANDLE)] },
  { name: 'SO_PRIORITY = the class', args: () => ['udp', '--to', OUTSIDE_V4, '--port', '9', '--priority', String(FLAT_CLASS)] },
  { name: 'SO_PRIORITY = the uplink\'s reserve class', args: () => ['udp', '--to', OUTSIDE_V4, '--port', '9', '--priority', String(0x7c05_0002)] },
  { name: 'PACKET_QDISC_BYPASS', args: ({ pod, nextHopMac }) => ['packet', '--dev', 'eth0', '--dst-mac', nextHopMac, '--dst-ip', OUTSIDE_V4, '--src-ip', pod.ipv4, '--bypass'] },
  {
    name: 'PACKET_QDISC_BYPASS, forged MAC and IP',
    args: ({ nextHopMac }) => ['packet', '--dev', 'eth0', '--dst-mac', nextHopMac, '--dst-ip', OUTSIDE_V4, '--src-ip', '198.18.134.66', ...FORGED_MAC, '--bypass'],
  },
  { name: 'raw frames, forged MAC and IP', args: ({ nextHopMac }) => ['packet', '--dev', 'eth0', '--dst-mac', nextHopMac, '--dst-ip', OUTSIDE_V4, '--src-ip', '198.18.134.66', ...FORGED_MAC] },
  { name: 'non-IP ethertype 0x88b5, bypass', args: ({ nextHopMac }) => ['packet', '--dev', 'eth0', '--dst-mac', nextHopMac, '--ethertype', '0x88b5', '--bypass'] },
];

/** What a device sent on while `work` ran (its tx bytes), in Mbit/s over the sender's own seconds. */
async function sentOn(netns: string, dev: string, work: () => Promise<FloodReport>): Promise<{ mbit: number; sent: FloodReport }> {
  const txBytes = async () => (JSON.parse(await must('ip', ['-n', netns, '-s', '-j', 'link', 'show', 'dev', dev])) as Array<{ stats64: { tx: { bytes: number } } }>)[0]!.stats64.tx.bytes;
  const before = await txBytes();
  const sent = await work();
  await new Promise((resolve) => setTimeout(resolve, 200));
  return { mbit: (((await txBytes()) - before) * 8) / sent.seconds / 1e6, sent };
}

describe('a sender with only CAP_NET_RAW in a pod capped at 10 Mbit/s egress', () => {
  for (const attack of ATTACKS) {
    it(`${attack.name}: at most 1.05x the cap reaches the outside, from every kind of pod`, async () => {
      for (const target of targets) {
        // the veth pod's non-IP frames stop at the node (nothing routes them): counted as they leave
        // the host end's shaping (what its ifb sent on), the point past which the node would forward
        const shapedAtNode = target.kind.startsWith('veth') && attack.name.startsWith('non-IP');
        const { mbit, sent } = shapedAtNode
          ? await sentOn(node, ifbName('vhesc'), () => flood(target.pod.netns, SECONDS, attack.args(target), { cgroup: target.cgroup }))
          : await received(outside, 'out0', () => flood(target.pod.netns, SECONDS, attack.args(target), { cgroup: target.cgroup }));
        const sentMbit = (sent.bytes * 8) / sent.seconds / 1e6;
        console.log(`[escapes] ${target.kind}, ${attack.name}: sent ${sentMbit.toFixed(0)} Mbit/s, ${mbit.toFixed(2)} Mbit/s got through (cap ${CAP_MBIT})`);
        expect(mbit, `${target.kind}: ${attack.name}`).toBeLessThanOrEqual(CAP_MBIT * 1.05);
      }
    });
  }

  it('a pod with CAP_NET_ADMIN deleting its own qdiscs is still capped (veth: nothing of tcqos is in the pod; macvlan: the uplink holds)', async () => {
    for (const target of targets) {
      await inNetns(target.pod.netns, 'tc', ['qdisc', 'del', 'dev', 'eth0', 'root']).catch(() => undefined);
      const { mbit } = await received(outside, 'out0', () => flood(target.pod.netns, SECONDS, ['udp', '--to', OUTSIDE_V4, '--port', '9'], { cgroup: target.cgroup, privileged: true }));
      console.log(`[escapes] ${target.kind}, qdiscs deleted inside the pod, root sender: ${mbit.toFixed(2)} Mbit/s got through (cap ${CAP_MBIT})`);
      expect(mbit, target.kind).toBeLessThanOrEqual(CAP_MBIT * 1.05);
    }
  });
});

describe('the documented limit: a macvlan pod without the uplink\'s tree', () => {
  it('shaped inside its netns only, PACKET_QDISC_BYPASS skips the cap (docs/security.md: enable uplink.enforce or drop NET_RAW)', async () => {
    const pod = await bed.macvlanPod(node, 'mvpod', 12, 'eth0', 'up0');
    const { uid, container } = await podCgroup();
    await add(pod, 'mvpod', uid, {}, prevResultFor('1.0.0', pod.path));
    const target: Target = { kind: 'macvlan pod (in-pod only)', pod, nextHopMac: await macOf(outside, 'out0'), cgroup: container };
    const bypass = ATTACKS.find((attack) => attack.name === 'PACKET_QDISC_BYPASS')!;
    const { mbit } = await received(outside, 'out0', () => flood(pod.netns, SECONDS, bypass.args(target), { cgroup: container }));
    console.log(`[escapes] ${target.kind}, PACKET_QDISC_BYPASS: ${mbit.toFixed(0)} Mbit/s got through (cap ${CAP_MBIT}): the documented limit`);
    expect(mbit).toBeGreaterThan(CAP_MBIT * 2);
    const handle = ATTACKS[0]!;
    const { mbit: direct } = await received(outside, 'out0', () => flood(pod.netns, SECONDS, handle.args(target), { cgroup: container }));
    expect(direct, 'SO_PRIORITY = the HTB handle is dropped (direct_qlen 0)').toBeLessThanOrEqual(CAP_MBIT * 1.05);
  });
});
