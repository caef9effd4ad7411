/**
 * Issue #5, lifecycle: full conflists driven through libcni (Debian's libcni 1.1.2, via cnidriver)
 * with the real reference plugins in front of tcqos: macvlan + host-local, and ptp + host-local.
 * ADD → CHECK → DEL in every cniVersion libcni handles in a conflist, DEL after the runtime already
 * removed the netns, and STATUS / GC (CNI 1.1.0, which Debian's libcni and plugins predate) by
 * calling the binary directly.
 */
import { execa } from 'execa';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { invoke, TEST_STATE_DIR } from '../helpers/plugin.ts';
import { must } from '../helpers/run.ts';
import { Testbed } from '../helpers/testbed.ts';
import { ifbName } from '../../src/tc/handles.ts';
import { bandwidthArgs, conflist, CRIO_BURST_BITS, Driver, expectNear, flatClass, htbClasses, ingressRedirect, links, netnsPath, rootQdisc, shapedSite, tcqos, type ShapedSite } from './chain.ts';

const bed = new Testbed('tqe1', 70);
/** The runner: holds the macvlan master (parent0, one end of a veth pair) and ptp's host-side veths. */
let runner: string;
let driver: Driver;

beforeAll(async () => {
  await bed.removeLeftovers();
  runner = await bed.macvlanHub();
  driver = new Driver(runner);
});

afterAll(async () => {
  await bed.destroy();
  driver?.cleanup();
});

/** Every version Debian's libcni (1.1.2) accepts in a conflist that tcqos also speaks. */
const VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0'] as const;
const CHECK_FROM = '0.4.0';

/** A class tree for egress and the reference plugin's flat keys for ingress, in one config. */
const POLICY = {
  egress: {
    rate: '30mbit',
    default: 'rest',
    classes: [
      { name: 'rest', rate: '10mbit' },
      { name: 'db', rate: '20mbit', ceil: '30mbit', peers: ['198.18.70.250/32', '2001:2:70::fa/128'] },
    ],
  },
  ingressRate: 15_000_000,
  ingressBurst: 400_000, // bits: 50 000 bytes
};

type ChainKind = 'macvlan' | 'ptp';
const CHAINS: Record<ChainKind, { octet: number; main: () => object }> = {
  macvlan: { octet: 70, main: () => driver.macvlan('parent0', 70, '2001:2:70::/64') },
  ptp: { octet: 71, main: () => driver.ptp(71) },
};

interface Added {
  readonly pod: string;
  readonly path: string;
  readonly list: string;
  readonly network: string;
  readonly id: string;
  readonly result: Record<string, unknown>;
}

/** Creates a pod netns and runs ADD of `<main plugin> + host-local → tcqos` for it. */
async function addPod(kind: ChainKind, cniVersion: string, tag: string, settings: object = POLICY): Promise<Added> {
  const pod = await bed.netns(tag);
  const network = `tqe1-${tag}`;
  const list = driver.write(network, conflist(cniVersion, network, [CHAINS[kind].main(), tcqos(settings)]));
  const id = `tqe1-ctr-${tag}`;
  const added = await driver.must('add', list, netnsPath(pod), 'eth0', id);
  return { pod, path: netnsPath(pod), list, network, id, result: added.result! };
}

interface ResultInterface {
  name: string;
  sandbox?: string;
}

/** The host-side interfaces a result names (ptp's veth end in the runner). */
function hostInterfaces(result: Record<string, unknown>): string[] {
  return ((result['interfaces'] as ResultInterface[] | undefined) ?? []).filter((i) => !i.sandbox).map((i) => i.name);
}

async function expectInstalled(site: ShapedSite): Promise<void> {
  const { netns } = site;
  expect(await rootQdisc(netns, site.egress)).toBe('htb:7c05:');
  const classes = await htbClasses(netns, site.egress);
  expect(classes.map((c) => `${c.id}<${c.parent ?? 'root'} ${c.rate}/${c.ceil}`)).toEqual([
    '7c05:1<root 30000000/30000000',
    '7c05:10<7c05:1 10000000/10000000',
    '7c05:11<7c05:1 20000000/30000000',
  ]);
  const ifb = await ingressRedirect(netns, site.redirectedFrom);
  expect(ifb, `${site.redirectedFrom} ingress redirects to an ifb`).toMatch(/^tcq[0-9a-f]{12}$/);
  expect(await links(netns)).toContain(`${ifb}:ifb`);
  expect(await rootQdisc(netns, ifb!)).toBe('htb:7c05:');
  const ingress = await flatClass(netns, site.ingress);
  expect(ingress.rate).toBe(15_000_000);
  expectNear(ingress.burst, 50_000, 0.01, 'ingress burst (ingressBurst 400000 bits)');
}

describe.each(Object.keys(CHAINS) as ChainKind[])('%s + host-local → tcqos through libcni', (kind) => {
  it.each(VERSIONS)('cniVersion %s: ADD shapes, CHECK passes (or libcni refuses it), DEL removes everything', async (cniVersion) => {
    const tag = `${kind[0]}${cniVersion.replaceAll('.', '')}`;
    const { pod, path, list, network, id, result } = await addPod(kind, cniVersion, tag);

    // The chain's result is the main plugin's, passed on by tcqos unchanged.
    expect(result['cniVersion']).toBe(cniVersion);
    expect(result['interfaces']).toContainEqual(expect.objectContaining({ name: 'eth0', sandbox: path }));
    const ips = (result['ips'] as Array<{ address: string }>).map((ip) => ip.address);
    expect(ips[0]).toMatch(new RegExp(`^198\\.18\\.${CHAINS[kind].octet}\\.\\d+/24$`));
    if (kind === 'macvlan') expect(ips[1]).toMatch(/^2001:2:70::[0-9a-f]+\/64$/);
    expect(driver.allocated(network)).toEqual(ips.map((ip) => ip.split('/')[0]).sort());
    const site = shapedSite(result, runner, pod);
    // ptp's pod is shaped on the host end of its veth, where it cannot reach: nothing in the pod
    if (kind === 'ptp') expect(await rootQdisc(pod, 'eth0')).toBe('noqueue:0:');
    await expectInstalled(site);

    const checked = await driver.call('check', list, path, 'eth0', id);
    if (cniVersion < CHECK_FROM) {
      // CHECK does not exist before 0.4.0: libcni refuses it before any plugin runs.
      expect(checked.exitCode).toBe(1);
      expect(checked.stderr).toContain(`configuration version "${cniVersion}" does not support the CHECK command`);
    } else {
      expect(checked.exitCode, checked.stderr).toBe(0);
      // CHECK reaches tcqos: shaping removed behind its back is reported as drift (tcqos code 104).
      const atRoot = kind === 'ptp' ? site.ingress : site.egress;
      await must('ip', ['netns', 'exec', site.netns, 'tc', 'qdisc', 'del', 'dev', atRoot, 'root']);
      const drifted = await driver.call('check', list, path, 'eth0', id);
      expect(drifted.exitCode).toBe(1);
      const direction = kind === 'ptp' ? 'ingress' : 'egress';
      expect(drifted.error, drifted.stderr).toMatchObject({ code: 104, msg: expect.stringContaining(`${direction}: root qdisc on ${atRoot}`) });
    }

    await driver.must('del', list, path, 'eth0', id);
    expect(await links(pod), 'the pod keeps only lo').toEqual(['lo:']);
    expect(driver.allocated(network), 'host-local released the addresses').toEqual([]);
    expect(driver.cachedResults()).toEqual([]);
    for (const host of hostInterfaces(result)) {
      expect(await links(runner)).not.toContain(`${host}:veth`);
      expect(await links(runner), 'the host end\'s ifb is gone').not.toContain(`${ifbName(host)}:ifb`);
    }
    // DEL is idempotent: a runtime retries it.
    await driver.must('del', list, path, 'eth0', id);
  });

  it('DEL after the runtime already deleted the netns succeeds and releases the address', async () => {
    const { pod, path, list, network, id, result } = await addPod(kind, '1.0.0', `${kind[0]}gone`);
    expect(driver.allocated(network)).not.toEqual([]);
    await must('ip', ['netns', 'del', pod]);
    const deleted = await driver.call('del', list, path, 'eth0', id);
    expect(deleted.exitCode, deleted.stderr).toBe(0);
    expect(driver.allocated(network)).toEqual([]);
    expect(driver.cachedResults()).toEqual([]);
    // ptp's host end dies with its peer once the kernel has dismantled the namespace.
    for (const host of hostInterfaces(result)) {
      for (let i = 0; i < 40 && (await links(runner)).includes(`${host}:veth`); i++) await sleep(50);
      expect(await links(runner)).not.toContain(`${host}:veth`);
      // its ifb lives in the runner, not in the pod: DEL removes it (the reference plugin leaks its bwp ifb)
      expect(await links(runner)).not.toContain(`${ifbName(host)}:ifb`);
    }
  });

  it('DEL with an empty CNI_NETNS (the runtime lost the path) succeeds and releases the address', async () => {
    const { network, list, id } = await addPod(kind, '0.4.0', `${kind[0]}nons`);
    const deleted = await driver.call('del', list, '', 'eth0', id);
    expect(deleted.exitCode, deleted.stderr).toBe(0);
    expect(driver.allocated(network)).toEqual([]);
  });
});

describe('the bandwidth capability as CRI-O passes it', () => {
  it('CRI-O\'s 2^35-9 bit burst is accepted and clamped to 64 KiB at 10 Mbit/s, in both directions', async () => {
    const pod = await bed.netns('crio');
    const list = driver.write('crio', conflist('1.0.0', 'tqe1-crio', [driver.macvlan('parent0', 70), tcqos({}, true)]));
    const runtime = bandwidthArgs(10_000_000, 10_000_000, CRIO_BURST_BITS);
    await driver.must('add', list, netnsPath(pod), 'eth0', 'tqe1-ctr-crio', runtime);
    const ifb = await ingressRedirect(pod, 'eth0');
    for (const dev of ['eth0', ifb!]) {
      expect(await flatClass(pod, dev)).toMatchObject({ rate: 10_000_000, ceil: 10_000_000, burst: 64 * 1024, cburst: 64 * 1024 });
    }
    await driver.must('check', list, netnsPath(pod), 'eth0', 'tqe1-ctr-crio', runtime);
    await driver.must('del', list, netnsPath(pod), 'eth0', 'tqe1-ctr-crio', runtime);
    expect(await links(pod)).toEqual(['lo:']);
  });
});

describe('versions libcni or the reference plugins cannot chain', () => {
  it('a 1.1.0 conflist fails ADD in macvlan (Debian plugins stop at 1.0.0): STATUS and GC are tested directly', async () => {
    const pod = await bed.netns('v110');
    const list = driver.write('v110', conflist('1.1.0', 'tqe1-v110', [driver.macvlan('parent0', 70), tcqos(POLICY)]));
    const added = await driver.call('add', list, netnsPath(pod), 'eth0', 'tqe1-ctr-v110');
    expect(added.exitCode).toBe(1);
    expect(added.error).toMatchObject({ code: 1, msg: 'incompatible CNI versions' });
    expect(await links(pod)).toEqual(['lo:']);
  });
});

describe('STATUS and GC (CNI 1.1.0), invoking the binary directly', () => {
  const config = (cniVersion: string, extra: object = {}) => ({ cniVersion, name: 'tqe1-status', type: 'tcqos', ...POLICY, ...extra });

  it('VERSION lists 1.1.0 and every conflist version above', async () => {
    const version = await invoke(runner, { command: 'VERSION', config: { cniVersion: '1.1.0' } });
    expect(version.exitCode).toBe(0);
    expect(version.json?.['supportedVersions']).toEqual(expect.arrayContaining([...VERSIONS, '1.1.0']));
  });

  it('STATUS succeeds with no output (ip, tc and nsenter are found without PATH)', async () => {
    const status = await invoke(runner, { command: 'STATUS', config: config('1.1.0') });
    expect(status.exitCode, status.stdout).toBe(0);
    expect(status.stdout).toBe('');
    expect(status.stderr).toBe('');
  });

  it('STATUS and GC in a 1.0.0 config are refused with code 1 (they were added in 1.1.0)', async () => {
    for (const command of ['STATUS', 'GC'] as const) {
      const refused = await invoke(runner, { command, config: config('1.0.0') });
      expect(refused.exitCode).toBe(1);
      expect(refused.json).toMatchObject({ code: 1, msg: expect.stringContaining(`does not allow ${command}`) });
    }
  });

  it('GC removes a lock file nobody holds (a killed tcqos\'s) and keeps one that is held', async () => {
    const dir = `${TEST_STATE_DIR}/locks`;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const stale = `${dir}/tqe1-e2e-stale-${process.pid}.lock`;
    const live = `${dir}/tqe1-e2e-live-${process.pid}.lock`;
    writeFileSync(stale, '');
    // a live holder: util-linux flock holds a kernel lock on the file for as long as it runs
    const holder = execa('flock', ['--exclusive', live, 'sleep', '30'], { reject: false });
    try {
      for (let i = 0; i < 100 && !existsSync(live); i++) await sleep(20);
      const gc = await invoke(runner, {
        command: 'GC',
        // What a 1.1.0 runtime sends: the plugin config plus the attachments still in use.
        config: config('1.1.0', { 'cni.dev/valid-attachments': [{ containerID: 'tqe1-ctr-kept', ifname: 'eth0' }] }),
      });
      expect(gc.exitCode, gc.stdout).toBe(0);
      expect(gc.stdout).toBe('');
      expect(existsSync(stale), 'unheld lock removed').toBe(false);
      expect(existsSync(live), 'held lock kept').toBe(true);
    } finally {
      holder.kill('SIGKILL');
      await holder;
      rmSync(stale, { force: true });
      rmSync(live, { force: true });
    }
  });
});
