/**
 * Issue #5, a pod with two networks, the way Kubernetes with Multus builds one: eth0 from the
 * cluster network's conflist (ptp + host-local → tcqos, limits set by the administrator) and net1
 * from a secondary network's conflist (macvlan + host-local → tcqos, limits from the runtime's
 * `bandwidth` args, which Multus passes per network from the k8s.v1.cni.cncf.io/networks selection).
 * Same container, two attachments, two policies, each with its own ifb; deleting one leaves the other.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectShaped, goodputMbit } from '../helpers/iperf.ts';
import { Testbed } from '../helpers/testbed.ts';
import {
  bandwidthArgs,
  conflist,
  Driver,
  expectNear,
  flatClass,
  htbClasses,
  ingressRedirect,
  links,
  macvlanPeer,
  netnsPath,
  rootQdisc,
  shapedSite,
  type ShapedSite,
  tcqos,
} from './chain.ts';

const bed = new Testbed('tqe3', 74);
let runner: string;
let driver: Driver;
let peer: string;
let pod: string;
let eth0List: string;
let net1List: string;
/** Where eth0 (ptp) is shaped: the host end of its veth, in the runner. */
let eth0Site: ShapedSite;
const ID = 'tqe3-ctr-pod';
const ETH0_GATEWAY = '198.18.74.1';
const NET1_PEER = '198.18.75.250';
/** What the user asked for on net1 (Multus selection "bandwidth"): 10 Mbit/s, a 10 MB burst. */
const NET1_RUNTIME = bandwidthArgs(10_000_000, 10_000_000, 80_000_000);

beforeAll(async () => {
  await bed.removeLeftovers();
  runner = await bed.macvlanHub();
  driver = new Driver(runner);
  peer = await macvlanPeer(bed, runner, 'parent0', 'peer', `${NET1_PEER}/24`);
  pod = await bed.netns('pod');
  eth0List = driver.write(
    'cluster',
    conflist('1.0.0', 'tqe3-cluster', [
      driver.ptp(74),
      tcqos({ egressRate: 20_000_000, egressBurst: 800_000, ingressRate: 20_000_000, ingressBurst: 800_000 }),
    ]),
  );
  // No static limits: net1 is shaped only when the runtime passes bandwidth args for it.
  net1List = driver.write('secondary', conflist('1.0.0', 'tqe3-secondary', [driver.macvlan('parent0', 75), tcqos({}, true)]));
  eth0Site = shapedSite((await driver.must('add', eth0List, netnsPath(pod), 'eth0', ID)).result!, runner, pod);
  await driver.must('add', net1List, netnsPath(pod), 'net1', ID, NET1_RUNTIME);
});

afterAll(async () => {
  if (pod) {
    await driver.call('del', net1List, netnsPath(pod), 'net1', ID, NET1_RUNTIME);
    await driver.call('del', eth0List, netnsPath(pod), 'eth0', ID);
  }
  await bed.destroy();
  driver?.cleanup();
});

describe('a pod with eth0 (ptp, static limits) and net1 (macvlan, runtime limits)', () => {
  it('each attachment has its own HTB and its own ifb, with its own policy: eth0 (ptp) on the host end of its veth, net1 (macvlan) in the pod', async () => {
    const eth0Ifb = await ingressRedirect(runner, eth0Site.redirectedFrom);
    const net1Ifb = await ingressRedirect(pod, 'net1');
    expect(eth0Ifb).toBe(eth0Site.egress);
    expect(net1Ifb).toMatch(/^tcq[0-9a-f]{12}$/);
    expect(await links(pod)).toEqual(['eth0:veth', 'lo:', 'net1:macvlan', `${net1Ifb}:ifb`].sort());
    expect(await links(runner)).toContain(`${eth0Ifb}:ifb`);
    for (const [netns, dev, rate] of [[runner, eth0Site.egress, 20e6], [runner, eth0Site.ingress, 20e6], [pod, 'net1', 10e6], [pod, net1Ifb!, 10e6]] as const) {
      expect(await rootQdisc(netns, dev)).toBe('htb:7c05:');
      expect((await flatClass(netns, dev)).rate, dev).toBe(rate);
    }
    // net1's 10 MB runtime burst is clamped to 64 KiB (50 ms at 10 Mbit/s is less than that).
    expect((await htbClasses(pod, 'net1'))[0]!.burst).toBe(64 * 1024);
    expect((await htbClasses(pod, net1Ifb!))[0]!.burst).toBe(64 * 1024);
    expectNear((await htbClasses(runner, eth0Site.egress))[0]!.burst, 100_000, 0.01, 'eth0 burst (800 000 bits)');
  });

  it('CHECK passes for both networks', async () => {
    await driver.must('check', eth0List, netnsPath(pod), 'eth0', ID);
    await driver.must('check', net1List, netnsPath(pod), 'net1', ID, NET1_RUNTIME);
  });

  for (const [direction, port] of [
    ['egress', 5741],
    ['ingress', 5743],
  ] as const) {
    it(`${direction}: 20 Mbit/s on eth0 and 10 Mbit/s on net1, both at once`, async () => {
      await expectShaped(
        () =>
          Promise.all([
            goodputMbit({ podNetns: pod, peerNetns: runner, peerAddress: ETH0_GATEWAY, port, direction }),
            goodputMbit({ podNetns: pod, peerNetns: peer, peerAddress: NET1_PEER, port: port + 1, direction }),
          ]),
        [`two networks, eth0 (ptp) ${direction}`, 20],
        [`two networks, net1 (macvlan) ${direction}`, 10],
      );
    });
  }

  it('DEL of net1 leaves eth0 shaped; DEL of eth0 leaves an empty pod', async () => {
    await driver.must('del', net1List, netnsPath(pod), 'net1', ID, NET1_RUNTIME);
    expect(await links(pod)).toEqual(['eth0:veth', 'lo:'].sort());
    expect(driver.allocated('tqe3-secondary')).toEqual([]);
    await driver.must('check', eth0List, netnsPath(pod), 'eth0', ID);
    expect((await htbClasses(runner, eth0Site.egress))[0]!.rate).toBe(20e6);

    await driver.must('del', eth0List, netnsPath(pod), 'eth0', ID);
    expect(await links(pod)).toEqual(['lo:']);
    expect(await links(runner)).not.toContain(`${eth0Site.egress}:ifb`);
    expect(driver.allocated('tqe3-cluster')).toEqual([]);
    expect(driver.cachedResults()).toEqual([]);
  });
});
