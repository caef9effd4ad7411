/**
 * The seed's experiment through the plugin, on a real macvlan pod with real TCP traffic: HTB on the
 * pod interface for egress, ifb + HTB inside the pod netns for ingress.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { expectShaped, goodputMbit, TCP6_GOODPUT_RATIO, type Flow } from '../helpers/iperf.ts';
import { invoke, prevResultFor } from '../helpers/plugin.ts';
import { must } from '../helpers/run.ts';
import { Testbed, type Pod } from '../helpers/testbed.ts';

const bed = new Testbed('tqshp', 61);
let runner: string;
let pod: Pod;
let dbPeer: Pod;
let otherPeer: Pod;

beforeAll(async () => {
  await bed.removeLeftovers();
  runner = await bed.netns('runner');
  const hub = await bed.macvlanHub();
  pod = await bed.macvlanPod(hub, 'pod', 2);
  dbPeer = await bed.macvlanPod(hub, 'db', 3);
  otherPeer = await bed.macvlanPod(hub, 'other', 4);
});

afterAll(() => bed.destroy());

afterEach(async () => {
  await invoke(runner, { command: 'DEL', config: { cniVersion: '1.0.0', name: 'seed', type: 'tcqos' }, netns: pod.path });
});

function conf(policy: object): object {
  return { cniVersion: '1.0.0', name: 'seed', type: 'tcqos', ...policy, prevResult: prevResultFor('1.0.0', pod.path) };
}

/** The seed's tree, with its 198.18.x.3 peer in the 40 Mbit/s class, in both directions. */
function seedPolicy(): object {
  const direction = {
    rate: '50mbit',
    default: 'rest',
    classes: [
      { name: 'rest', rate: '10mbit' },
      { name: 'db', rate: '40mbit', peers: [`${dbPeer.ipv4}/32`, `${dbPeer.ipv6}/128`] },
    ],
  };
  return { egress: direction, ingress: direction };
}

async function add(policy: object) {
  const result = await invoke(runner, { command: 'ADD', config: conf(policy), netns: pod.path });
  expect(result.stderr).toBe('');
  expect(result.exitCode, result.stdout).toBe(0);
  return result;
}

function flow(peer: Pod, direction: 'egress' | 'ingress', port: number, address = peer.ipv4): Flow {
  return { podNetns: pod.netns, peerNetns: peer.netns, peerAddress: address, port, direction };
}

describe('the seed experiment through tcqos on macvlan', () => {
  it('egress: 40 Mbit/s to the db peer and 10 Mbit/s to the rest, both at once', async () => {
    await add(seedPolicy());
    await expectShaped(
      () => Promise.all([goodputMbit(flow(dbPeer, 'egress', 5301)), goodputMbit(flow(otherPeer, 'egress', 5302))]),
      ['egress, db class', 40],
      ['egress, rest (default) class', 10],
    );
  });

  it('ingress: 40 Mbit/s from the db peer and 10 Mbit/s from the rest, both at once', async () => {
    await add(seedPolicy());
    await expectShaped(
      () => Promise.all([goodputMbit(flow(dbPeer, 'ingress', 5303)), goodputMbit(flow(otherPeer, 'ingress', 5304))]),
      ['ingress, db class', 40],
      ['ingress, rest (default) class', 10],
    );
  });

  it('a class at rate 10 ceil 50 borrows up to 50 when alone, in both directions', async () => {
    const direction = { rate: '50mbit', classes: [{ name: 'burstable', rate: '10mbit', ceil: '50mbit', peers: [`${dbPeer.ipv4}/32`] }] };
    await add({ egress: direction, ingress: direction });
    await expectShaped(() => goodputMbit(flow(dbPeer, 'egress', 5305)), ['ceil borrowing, egress', 50]);
    await expectShaped(() => goodputMbit(flow(dbPeer, 'ingress', 5306)), ['ceil borrowing, ingress', 50]);
  });

  it('an IPv6 peer class shapes IPv6 traffic', async () => {
    const direction = { rate: '60mbit', classes: [{ name: 'v6', rate: '20mbit', peers: [`${dbPeer.ipv6}/128`] }] };
    await add({ egress: direction, ingress: direction });
    await expectShaped(() => goodputMbit(flow(dbPeer, 'egress', 5307, dbPeer.ipv6)), ['IPv6 class, egress', 20, TCP6_GOODPUT_RATIO]);
    await expectShaped(() => goodputMbit(flow(dbPeer, 'ingress', 5308, dbPeer.ipv6)), ['IPv6 class, ingress', 20, TCP6_GOODPUT_RATIO]);
  });

  it('the reference-style flat egressRate shapes one class under the total', async () => {
    await add({ egressRate: 20_000_000, egressBurst: 200_000 });
    const classes = await must('ip', ['netns', 'exec', pod.netns, 'tc', 'class', 'show', 'dev', 'eth0']);
    const htb = classes.trim().split('\n').filter((line) => line.startsWith('class htb'));
    // the total at :1, and the one class under it (a class added later by an update goes beside it)
    expect(htb).toHaveLength(2);
    expect(htb.filter((line) => / leaf /.test(line))).toHaveLength(1);
    await expectShaped(() => goodputMbit(flow(dbPeer, 'egress', 5309)), ['flat egressRate', 20]);
    const qdiscs = await must('ip', ['netns', 'exec', pod.netns, 'tc', 'qdisc', 'show', 'dev', 'eth0']);
    expect(qdiscs).not.toMatch(/ingress/);
  });
});
