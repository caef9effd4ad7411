/**
 * A cap holds in total, on the wire: a pod capped at 10 Mbit/s whose tcqos.io/policy annotation
 * splits the cap into 8 classes, each with a 29 MiB burst and free to borrow up to the cap, sends
 * at most 1.05x the cap over 5 s. HTB lets a class with tokens send without asking its parent, so
 * with the bursts taken one by one the 8 classes sent 80 Mbit/s for the first 5 s (72 over 20 s).
 * Counted on the receiver's interface (frames, Ethernet headers included, as tc counts a rate),
 * from the moment the first bytes arrive.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { expectShaped, goodputMbit, WIRE_RATIO } from '../helpers/iperf.ts';
import { invoke, prevResultFor } from '../helpers/plugin.ts';
import { mbitBetween, stamped } from '../helpers/stamped.ts';
import { Testbed, type Pod } from '../helpers/testbed.ts';
import { linkBytes } from '../helpers/tools.ts';

const bed = new Testbed('tqcfg', 94);
let runner: string;
let pod: Pod;
let peer: Pod;

const CAP_MBIT = 10;
const CLASSES = 8;
const FIRST_PORT = 5401;
const WINDOW_S = 5;

beforeAll(async () => {
  await bed.removeLeftovers();
  runner = await bed.netns('runner');
  const hub = await bed.macvlanHub();
  pod = await bed.macvlanPod(hub, 'pod', 2);
  peer = await bed.macvlanPod(hub, 'peer', 3);
});

afterAll(() => bed.destroy());

afterEach(async () => {
  await invoke(runner, { command: 'DEL', config: { cniVersion: '1.0.0', name: 'caps', type: 'tcqos' }, netns: pod.path });
});

/** 8 classes of 1.25 Mbit/s (the whole cap), each borrowing up to 10 Mbit/s with a 29 MiB bucket (195 s at its rate). */
function greedyAnnotation(): string {
  const classes = Array.from({ length: CLASSES }, (_, i) => ({
    name: `c${i}`,
    rate: '1250kbit',
    ceil: '10mbit',
    burst: '29MiB',
    peers: [`${peer.ipv4}/32`],
    protocol: 'tcp',
    ports: [FIRST_PORT + i],
  }));
  return JSON.stringify({ egress: { rate: '10mbit', default: 'c0', classes } });
}

const rxBytes = () => linkBytes(peer.netns, peer.ifname, 'rx');

/** Wire Mbit/s the peer received over WINDOW_S seconds from the first bytes of 8 flows, one per class. */
async function floodAllClasses(): Promise<{ wireMbit: number; goodputMbit: number }> {
  const before = await rxBytes();
  const flows = Promise.all(
    Array.from({ length: CLASSES }, (_, i) =>
      goodputMbit({ podNetns: pod.netns, peerNetns: peer.netns, peerAddress: peer.ipv4, port: FIRST_PORT + i, direction: 'egress', seconds: WINDOW_S + 3, omitSeconds: 0 }),
    ),
  );
  let start = await stamped(rxBytes);
  const deadline = Date.now() + 10_000;
  while (start.value - before < 20_000 && Date.now() < deadline) start = await stamped(rxBytes);
  await sleep(WINDOW_S * 1000);
  const end = await stamped(rxBytes);
  const goodputs = await flows;
  return { wireMbit: mbitBetween(start, end), goodputMbit: goodputs.reduce((sum, g) => sum + g, 0) };
}

function conf(cap: object): object {
  return {
    cniVersion: '1.0.0',
    name: 'caps',
    type: 'tcqos',
    ...cap,
    runtimeConfig: { 'io.kubernetes.cri.pod-annotations': { 'tcqos.io/policy': greedyAnnotation() } },
    prevResult: prevResultFor('1.0.0', pod.path),
  };
}

describe('a 10 Mbit/s cap holds in total against 8 annotated classes of 29 MiB bursts', () => {
  it.each([
    ['a cap without a burst (every bucket the default)', { egress: { rate: '10mbit' } }],
    ['a cap with a 100 KB burst (the buckets share it)', { egressRate: 10_000_000, egressBurst: 800_000 }],
  ])('%s: at most 1.05x the cap on the wire over 5 s', async (_name, cap) => {
    const added = await invoke(runner, { command: 'ADD', config: conf(cap), netns: pod.path });
    expect(added.exitCode, added.stdout).toBe(0);
    // Under 1.05x the cap, and over the floor: the flows did fill the cap, the measure is of a saturated tree.
    await expectShaped(async () => {
      const { wireMbit, goodputMbit: goodput } = await floodAllClasses();
      console.info(`caps-total, ${_name}: the 8 flows' TCP goodput ${goodput.toFixed(2)} Mbit/s, ${wireMbit.toFixed(2)} on the wire over ${WINDOW_S} s`);
      return wireMbit;
    }, [`caps-total, ${_name}`, CAP_MBIT, WIRE_RATIO]);
  });
});
