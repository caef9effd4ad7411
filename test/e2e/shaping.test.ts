/**
 * Issue #5, shaping through the whole chain: TCP goodput measured with iperf3 on pods set up by
 * libcni with the reference plugins in front of tcqos, in both directions.
 *
 * - macvlan + host-local → tcqos, the class tree (a db peer class and a default class).
 * - ptp + host-local → tcqos with the `bandwidth` capability: runtime args as containerd passes the
 *   kubernetes.io/ingress-bandwidth / egress-bandwidth annotations (burst 2^32-1 bits). tcqos keeps
 *   the lower of the static and runtime rate per direction and clamps the runtime burst.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectShaped, goodputMbit } from '../helpers/iperf.ts';
import { Testbed } from '../helpers/testbed.ts';
import {
  bandwidthArgs,
  conflist,
  CONTAINERD_BURST_BITS,
  Driver,
  expectNear,
  firstSecondMbit,
  flatClass,
  ingressRedirect,
  links,
  macvlanPeer,
  netnsPath,
  shapedSite,
  tcqos,
  type ShapedSite,
} from './chain.ts';

const bed = new Testbed('tqe2', 72);
let runner: string;
let driver: Driver;
let dbPeer: string;
let otherPeer: string;
const DB = '198.18.72.250';
const OTHER = '198.18.72.251';
/** ptp puts the gateway on its host-side veth in the runner: the peer of every ptp pod. */
const PTP_GATEWAY = '198.18.73.1';

beforeAll(async () => {
  await bed.removeLeftovers();
  runner = await bed.macvlanHub();
  driver = new Driver(runner);
  dbPeer = await macvlanPeer(bed, runner, 'parent0', 'db', `${DB}/24`);
  otherPeer = await macvlanPeer(bed, runner, 'parent0', 'other', `${OTHER}/24`);
});

afterAll(async () => {
  await bed.destroy();
  driver?.cleanup();
});

describe('macvlan + host-local → tcqos (cniVersion 1.0.0): the class tree, measured', () => {
  const direction = {
    rate: '50mbit',
    default: 'rest',
    classes: [
      { name: 'rest', rate: '10mbit' },
      { name: 'db', rate: '40mbit', ceil: '50mbit', peers: [`${DB}/32`] },
    ],
  };
  let pod: string;
  let list: string;
  const id = 'tqe2-ctr-tree';

  beforeAll(async () => {
    pod = await bed.netns('tree');
    list = driver.write('tree', conflist('1.0.0', 'tqe2-tree', [driver.macvlan('parent0', 72), tcqos({ egress: direction, ingress: direction })]));
    await driver.must('add', list, netnsPath(pod), 'eth0', id);
    await driver.must('check', list, netnsPath(pod), 'eth0', id);
  });

  afterAll(async () => {
    if (pod) await driver.call('del', list, netnsPath(pod), 'eth0', id);
  });

  for (const [direction, port, peers] of [
    ['egress', 5721, 'to the db peer and 10 Mbit/s to the other'],
    ['ingress', 5723, 'from the db peer and 10 Mbit/s from the other'],
  ] as const) {
    it(`${direction}: 40 Mbit/s ${peers}, both at once`, async () => {
      await expectShaped(
        () =>
          Promise.all([
            goodputMbit({ podNetns: pod, peerNetns: dbPeer, peerAddress: DB, port, direction }),
            goodputMbit({ podNetns: pod, peerNetns: otherPeer, peerAddress: OTHER, port: port + 1, direction }),
          ]),
        [`macvlan ${direction}, db class`, 40],
        [`macvlan ${direction}, default class`, 10],
      );
    });
  }

  it('the shaping survives a CHECK and DEL removes it with the interface', async () => {
    await driver.must('check', list, netnsPath(pod), 'eth0', id);
    await driver.must('del', list, netnsPath(pod), 'eth0', id);
    expect(await links(pod)).toEqual(['lo:']);
    expect(driver.allocated('tqe2-tree')).toEqual([]);
  });
});

describe('ptp + host-local → tcqos (cniVersion 0.4.0) with the bandwidth capability, as containerd passes it', () => {
  // Administrator: egress 40 Mbit/s (class-tree form), ingress 15 Mbit/s (reference keys, burst 300 kbit).
  const settings = { egress: { rate: '40mbit' }, ingressRate: 15_000_000, ingressBurst: 300_000 };
  // Pod annotations: egress-bandwidth 30M (tighter: wins), ingress-bandwidth 20M (looser: ignored).
  const runtime = bandwidthArgs(20_000_000, 30_000_000, CONTAINERD_BURST_BITS);
  let pod: string;
  let list: string;
  let site: ShapedSite;
  const id = 'tqe2-ctr-cap';

  beforeAll(async () => {
    pod = await bed.netns('cap');
    list = driver.write('cap', conflist('0.4.0', 'tqe2-cap', [driver.ptp(73), tcqos(settings, true)]));
    site = shapedSite((await driver.must('add', list, netnsPath(pod), 'eth0', id, runtime)).result!, runner, pod);
  });

  afterAll(async () => {
    if (pod) await driver.call('del', list, netnsPath(pod), 'eth0', id, runtime);
  });

  it('installs the lower rate per direction and clamps containerd\'s 512 MiB burst to 50 ms at the rate', async () => {
    // a ptp pod is shaped on the host end of its veth, in the runner
    expect(site.netns).toBe(runner);
    const egress = await flatClass(site.netns, site.egress);
    expect(egress.rate).toBe(30_000_000);
    expect(egress.ceil).toBe(30_000_000);
    // 50 ms at 30 Mbit/s = 187 500 bytes (above the 64 KiB floor).
    expectNear(egress.burst, 187_500, 0.01, 'egress burst from the runtime');
    expect(await ingressRedirect(site.netns, site.redirectedFrom)).toBe(site.egress);
    const ingress = await flatClass(site.netns, site.ingress);
    expect(ingress.rate).toBe(15_000_000);
    expectNear(ingress.burst, 37_500, 0.01, 'static ingress burst (300 000 bits)');
  });

  it('CHECK passes with the same runtime args and reports drift when they changed', async () => {
    await driver.must('check', list, netnsPath(pod), 'eth0', id, runtime);
    const changed = await driver.call('check', list, netnsPath(pod), 'eth0', id, bandwidthArgs(20_000_000, 25_000_000, CONTAINERD_BURST_BITS));
    expect(changed.exitCode).toBe(1);
    expect(changed.error, changed.stderr).toMatchObject({ code: 104, msg: expect.stringContaining('expected 25mbit') });
  });

  it('a fresh pod does not burst past its rate: first-second egress stays near 30 Mbit/s', async () => {
    // Taken literally, containerd's 2^32-1 bit burst would let the first 512 MiB out at line rate.
    const measured = await firstSecondMbit({ podNetns: pod, peerNetns: runner, peerAddress: PTP_GATEWAY, port: 5730, direction: 'egress' });
    console.info(`ptp egress, first second of a fresh flow: configured 30 Mbit/s (burst clamped to 187500 bytes), measured ${measured.toFixed(2)} Mbit/s`);
    expect(measured).toBeLessThan(30 * 1.1);
  });

  it('egress is shaped to the runtime\'s 30 Mbit/s (below the configured 40)', async () => {
    await expectShaped(() => goodputMbit({ podNetns: pod, peerNetns: runner, peerAddress: PTP_GATEWAY, port: 5731, direction: 'egress' }), ['ptp egress, runtime 30M < static 40M', 30]);
  });

  it('ingress is shaped to the configured 15 Mbit/s (the runtime asked for a looser 20)', async () => {
    await expectShaped(() => goodputMbit({ podNetns: pod, peerNetns: runner, peerAddress: PTP_GATEWAY, port: 5732, direction: 'ingress' }), ['ptp ingress, static 15M < runtime 20M', 15]);
  });
});
