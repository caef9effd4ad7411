/**
 * Issue #12, pods from a real runtime: Debian's containerd 1.6 (CRI plugin) on a private socket runs
 * pod sandboxes through its CNI chain — macvlan + host-local, then tcqos with the `bandwidth` and
 * `io.kubernetes.cri.pod-annotations` capabilities — driven by a small CRI client as the kubelet
 * would. Rates are measured with iperf3 from inside the pod to macvlan peers on the same parent.
 *
 * - kubernetes.io/egress-bandwidth / ingress-bandwidth (containerd turns them into runtimeConfig.bandwidth);
 * - tcqos.io/policy with a peer class and the implicit default class;
 * - tcqos.io/policy above the administrator's cap (fitted under it);
 * - an invalid tcqos.io/policy (RunPodSandbox fails, naming the annotation and the field; nothing left);
 * - stop + remove of every pod leaves no ifb, qdisc, netns, record or address.
 *
 * containerd and every plugin it execs run inside the runner namespace (the macvlan parent's).
 */
import { basename } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectShaped, goodputMbit } from '../helpers/iperf.ts';
import { installedQdiscs } from '../helpers/tc-state.ts';
import { Testbed } from '../helpers/testbed.ts';
import { htbClasses, ingressRedirect, links, macvlanPeer, type HtbClass } from './chain.ts';
import type { PodRequest } from './containerd/cri.ts';
import { ContainerdNode } from './containerd/node.ts';
import { netnsHeld, Pods, type Pod } from './containerd/pods.ts';

const bed = new Testbed('tqctr', 60);
const NETWORK = 'tqctr-net';
const PEER = bed.v4(250);
const OTHER = bed.v4(251);
/** The administrator's cap in the conflist, both directions. */
const CAP_MBIT = 50;
const MBIT = 1_000_000;

let runner: string;
let node: ContainerdNode;
let pods: Pods;
let peer: string;
let other: string;

beforeAll(async () => {
  await bed.removeLeftovers();
  runner = await bed.macvlanHub();
  peer = await macvlanPeer(bed, runner, 'parent0', 'peer', `${PEER}/24`);
  other = await macvlanPeer(bed, runner, 'parent0', 'other', `${OTHER}/24`);
  node = new ContainerdNode();
  pods = new Pods(node, bed.prefix);
  node.writeConflist({
    cniVersion: '1.0.0',
    name: NETWORK,
    plugins: [
      {
        type: 'macvlan',
        master: 'parent0',
        mode: 'bridge',
        ipam: { type: 'host-local', dataDir: node.ipamDir, ranges: [[{ subnet: `${bed.v4(0)}/24`, rangeStart: bed.v4(10), rangeEnd: bed.v4(99) }]] },
      },
      {
        type: 'tcqos',
        capabilities: { bandwidth: true, 'io.kubernetes.cri.pod-annotations': true },
        logFile: node.tcqosLogFile,
        egress: { rate: `${CAP_MBIT}mbit` },
        ingress: { rate: `${CAP_MBIT}mbit` },
      },
    ],
  });
  // The state dir through the environment (libcni passes containerd's to every plugin).
  await node.start(runner, { TCQOS_STATE_DIR: node.tcqosStateDir });
});

afterAll(async () => {
  await pods?.cleanup();
  await node?.stop();
  await bed.destroy();
});

function pod(name: string, annotations: Record<string, string>): PodRequest {
  return { name, namespace: 'tqctr', uid: `tqctr-uid-${name}`, annotations };
}

/** The root class of the HTB tree on `dev` (the one without a parent). */
async function rootClass(netns: string, dev: string): Promise<HtbClass> {
  const root = (await htbClasses(netns, dev)).find((c) => c.parent === undefined);
  if (!root) throw new Error(`no HTB root class on ${dev} in ${netns}`);
  return root;
}

async function ingressDevice(p: Pod): Promise<string> {
  const ifb = await ingressRedirect(p.netns, 'eth0');
  if (!ifb) throw new Error(`no ingress redirect on eth0 of ${p.name}`);
  return ifb;
}

function warnings(p: Pod): string[] {
  return node.tcqosLog(p.id).filter((line) => line.level >= 40).map((line) => line.msg);
}

/**
 * Stop (CNI DEL runs) then remove: the namespace is emptied of everything tcqos and macvlan put
 * there, then goes; tcqos's record and host-local's address go with it.
 */
async function expectStopAndRemoveClean(p: Pod): Promise<void> {
  await pods.stop(p);
  expect(await links(p.netns), 'links left in the pod netns after StopPodSandbox').toEqual(['lo:']);
  expect(await installedQdiscs(p.netns), 'qdiscs left after StopPodSandbox').toEqual([]);
  await pods.remove(p);
  expect(node.podNetnsMounts(), 'containerd still mounts the netns').not.toContain(basename(p.netnsPath));
  expect(netnsHeld(p.netnsId), `${p.netnsId} still held by a process or mount`).toBe(false);
  expect(node.tcqosStateFiles().filter((file) => file.includes(p.id)), 'tcqos records left').toEqual([]);
  expect(node.allocated(NETWORK), 'address still allocated').not.toContain(p.ip);
}

describe('a pod with kubernetes.io/egress-bandwidth 10M and ingress-bandwidth 20M', () => {
  let p: Pod;

  beforeAll(async () => {
    p = await pods.run(pod('bw', { 'kubernetes.io/egress-bandwidth': '10M', 'kubernetes.io/ingress-bandwidth': '20M' }));
  });

  it('is shaped to the annotations in the pod netns: 10 Mbit/s on eth0, 20 Mbit/s on the ingress ifb', async () => {
    expect((await rootClass(p.netns, 'eth0')).rate).toBe(10 * MBIT);
    expect((await rootClass(p.netns, await ingressDevice(p))).rate).toBe(20 * MBIT);
  });

  for (const [direction, port, mbit] of [
    ['egress', 5760, 10],
    ['ingress', 5761, 20],
  ] as const) {
    it(`${direction} is measured at ${mbit} Mbit/s through the whole chain`, async () => {
      await expectShaped(() => goodputMbit({ podNetns: p.netns, peerNetns: peer, peerAddress: PEER, port, direction }), [`containerd pod, kubernetes.io/${direction}-bandwidth`, mbit]);
    });
  }

  it('logs no warning (containerd\'s Go-cased runtimeConfig keys and its burst are expected input)', () => {
    expect(node.tcqosLog(p.id).length, 'tcqos wrote no log line for this pod').toBeGreaterThan(0);
    expect(warnings(p)).toEqual([]);
  });

  it('records the attachment with the pod\'s identity in the state dir', () => {
    const record = node.tcqosStateFiles().find((file) => file === `attachments/eth0@${p.id}.json`);
    expect(record, `files in the state dir: ${node.tcqosStateFiles().join(', ')}`).toBeDefined();
    expect(node.tcqosRecord(record!)).toMatchObject({ containerId: p.id, ifname: 'eth0', network: NETWORK, pod: { namespace: 'tqctr', name: 'bw' } });
  });

  it('stop and remove leave no ifb, qdisc, netns, record or address', async () => {
    await expectStopAndRemoveClean(p);
  });
});

describe('a pod with a tcqos.io/policy: a peer class and the implicit default class', () => {
  const policy = { egress: { rate: '30mbit', classes: [{ name: 'peer', rate: '20mbit', peers: [`${PEER}/32`] }] } };
  let p: Pod;

  beforeAll(async () => {
    p = await pods.run(pod('policy', { 'tcqos.io/policy': JSON.stringify(policy) }));
  });

  it('installs the annotation\'s tree on eth0 (30 = 20 for the peer + 10 default) and keeps the cap for ingress', async () => {
    const egress = await htbClasses(p.netns, 'eth0');
    expect((await rootClass(p.netns, 'eth0')).rate).toBe(30 * MBIT);
    expect(egress.filter((c) => c.parent !== undefined).map((c) => c.rate).sort((a, b) => a - b)).toEqual([10 * MBIT, 20 * MBIT]);
    expect((await rootClass(p.netns, await ingressDevice(p))).rate).toBe(CAP_MBIT * MBIT);
  });

  it('egress: 20 Mbit/s to the peer and 10 Mbit/s to anyone else, both at once', async () => {
    await expectShaped(
      () =>
        Promise.all([
          goodputMbit({ podNetns: p.netns, peerNetns: peer, peerAddress: PEER, port: 5762, direction: 'egress' }),
          goodputMbit({ podNetns: p.netns, peerNetns: other, peerAddress: OTHER, port: 5763, direction: 'egress' }),
        ]),
      ['containerd pod, tcqos.io/policy peer class', 20],
      ['containerd pod, tcqos.io/policy default class', 10],
    );
  });

  it('logs no warning', () => {
    expect(warnings(p)).toEqual([]);
  });

  it('stop and remove leave no ifb, qdisc, netns, record or address', async () => {
    await expectStopAndRemoveClean(p);
  });
});

describe(`a pod whose tcqos.io/policy asks for more than the administrator's ${CAP_MBIT} Mbit/s cap`, () => {
  // 200 Mbit/s with a 100 Mbit/s peer class: fitted under the cap, the tree keeps its two classes.
  const policy = {
    egress: { rate: '200mbit', classes: [{ name: 'peer', rate: '100mbit', peers: [`${PEER}/32`] }] },
    ingress: { rate: '200mbit' },
  };
  let p: Pod;

  beforeAll(async () => {
    p = await pods.run(pod('overcap', { 'tcqos.io/policy': JSON.stringify(policy) }));
  });

  it('installs the annotation\'s tree cut to the cap: root at the cap, its two classes within it', async () => {
    const egress = await htbClasses(p.netns, 'eth0');
    expect((await rootClass(p.netns, 'eth0')).rate).toBe(CAP_MBIT * MBIT);
    const leaves = egress.filter((c) => c.parent !== undefined);
    expect(leaves, 'the peer class and the implicit default').toHaveLength(2);
    expect(leaves.reduce((sum, c) => sum + c.rate, 0)).toBeLessThanOrEqual(CAP_MBIT * MBIT);
    for (const leaf of leaves) expect(leaf.ceil).toBeLessThanOrEqual(CAP_MBIT * MBIT);
    expect((await rootClass(p.netns, await ingressDevice(p))).rate).toBe(CAP_MBIT * MBIT);
  });

  it('egress: both classes busy at once add up to the cap', async () => {
    await expectShaped(async () => {
      const [toPeer, toOther] = await Promise.all([
        goodputMbit({ podNetns: p.netns, peerNetns: peer, peerAddress: PEER, port: 5764, direction: 'egress' }),
        goodputMbit({ podNetns: p.netns, peerNetns: other, peerAddress: OTHER, port: 5765, direction: 'egress' }),
      ]);
      console.info(`containerd pod, policy over the cap, egress per class: peer ${toPeer.toFixed(2)}, default ${toOther.toFixed(2)} Mbit/s`);
      return toPeer + toOther;
    }, [`containerd pod, tcqos.io/policy 200mbit over a ${CAP_MBIT}mbit cap, egress (sum of both classes)`, CAP_MBIT]);
  });

  it('ingress is measured at the cap', async () => {
    await expectShaped(() => goodputMbit({ podNetns: p.netns, peerNetns: peer, peerAddress: PEER, port: 5766, direction: 'ingress' }), [
      `containerd pod, tcqos.io/policy 200mbit over a ${CAP_MBIT}mbit cap, ingress`,
      CAP_MBIT,
    ]);
  });

  it('stop and remove leave no ifb, qdisc, netns, record or address', async () => {
    await expectStopAndRemoveClean(p);
  });
});

describe('a pod with an invalid tcqos.io/policy', () => {
  const policy = { egress: { rate: '30mbit', classes: [{ name: 'peer', rate: 'fast', peers: [`${PEER}/32`] }] } };

  it('fails RunPodSandbox with a message naming the annotation and the field, and leaves nothing behind', async () => {
    const before = { netns: node.podNetnsMounts(), addresses: node.allocated(NETWORK), state: node.tcqosStateFiles(), runner: await links(runner) };
    const failure = await pods.run(pod('invalid', { 'tcqos.io/policy': JSON.stringify(policy) })).then(
      (p) => new Error(`RunPodSandbox succeeded (sandbox ${p.id})`),
      (error: unknown) => error as Error,
    );
    console.info(`containerd pod, invalid tcqos.io/policy: ${failure.message}`);
    expect(failure.message).toContain('tcqos.io/policy');
    expect(failure.message).toContain('egress.classes[0].rate');
    expect(node.podNetnsMounts(), 'netns left').toEqual(before.netns);
    expect(node.allocated(NETWORK), 'address leaked').toEqual(before.addresses);
    expect(node.tcqosStateFiles(), 'state files left').toEqual(before.state);
    expect(await links(runner), 'links left in the runner').toEqual(before.runner);
  });
});
