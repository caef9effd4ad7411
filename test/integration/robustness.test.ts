/**
 * Robustness against the real kernel: hostile netns and interface values, faults (the plugin killed
 * at each point of ADD and at random moments, tc lines that fail), foreign qdiscs, a netns that
 * vanishes, concurrency (20 pods at once; ADD and DEL racing on one attachment), and a short soak.
 * After every scenario tcqos must leave zero state: no qdisc with a handle other than 0:, no ifb, no
 * filter, no stray process, no lock file.
 *
 * Namespaces: tqr1-* (faults, 198.18.80.0/24), tqr2-* (the crowd of 20 pods, .81), tqr3-* (soak,
 * .82). The plugin always runs inside a runner namespace.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatReport, leftovers, podLeftovers, runPlugin, runSoak, soakPassed, strayLockFiles, strayProcesses, strayRecords } from '../../bench/soak.ts';
import { normalizeConfig } from '../../src/config/normalize.ts';
import { lockPath } from '../../src/state/lock.ts';
import { setupLines } from '../../src/plan/batch.ts';
import { planAttachment } from '../../src/plan/tree.ts';
import { ifbName } from '../../src/tc/handles.ts';
import { invoke, prevResultFor, TEST_STATE_DIR, type PluginResult } from '../helpers/plugin.ts';
import { must, run } from '../helpers/run.ts';
import { Testbed, type Pod } from '../helpers/testbed.ts';

const bed = new Testbed('tqr1', 80);
const crowd = new Testbed('tqr2', 81);
let runner: string;
let hub: string;
let pod: Pod;
let tmp: string;

/** Both directions with classes: the ADD with the most steps (ifb, two trees, redirect). */
const policy = {
  egress: { rate: '50mbit', classes: [{ name: 'db', rate: '40mbit', peers: ['198.18.80.3/32'], protocol: 'tcp', ports: [5432, 5433] }] },
  ingress: { rate: '30mbit', classes: [{ name: 'db', rate: '20mbit', ceil: '30mbit', peers: ['2001:2:50::3/128'] }] },
};
const egressOnly = { egress: { rate: '20mbit' } };
const ingressOnly = { ingressRate: 5_000_000, ingressBurst: 80_000 };

function conf(extra: object = policy, target: Pod = pod, ifname = target.ifname): object {
  return { cniVersion: '1.0.0', name: 'robust', type: 'tcqos', ...extra, prevResult: prevResultFor('1.0.0', target.path, ifname) };
}

interface Call {
  readonly policy?: object;
  readonly target?: Pod;
  readonly ifname?: string;
  readonly netns?: string;
  readonly fault?: string;
  readonly config?: object | string;
}

function call(command: 'ADD' | 'DEL' | 'CHECK' | 'GC', options: Call = {}): Promise<PluginResult> {
  const target = options.target ?? pod;
  const ifname = options.ifname ?? target.ifname;
  return invoke(runner, {
    command,
    config: options.config ?? (command === 'GC' ? { cniVersion: '1.1.0', name: 'robust', type: 'tcqos' } : conf(options.policy ?? policy, target, ifname)),
    netns: options.netns ?? target.path,
    ifname,
    ...(options.fault ? { extraEnv: { TCQOS_FAULT: options.fault } } : {}),
  });
}

let faultsInjected = 0;

/** Nothing of tcqos's in the pod, no stray process, no lock file of the attachment. */
async function expectClean(target: Pod = pod, why = ''): Promise<void> {
  const left = await podLeftovers(target.netns);
  expect(left, `tcqos state left in ${target.netns} ${why}`).toEqual({ ifbs: [], qdiscs: [], filters: [] });
  expect(strayLockFiles([{ path: target.path, ifname: target.ifname }]), `lock file left ${why}`).toEqual([]);
  expect(strayRecords([{ path: target.path, ifname: target.ifname }]), `registry record left ${why}`).toEqual([]);
}

async function expectShaped(target: Pod = pod, extra: object = policy, why = ''): Promise<void> {
  const checked = await call('CHECK', { target, policy: extra });
  expect(checked.exitCode, `CHECK ${why}: ${checked.stdout}`).toBe(0);
}

async function expectError(result: PluginResult, code: number, message: RegExp): Promise<void> {
  expect(result.exitCode, result.stdout).not.toBe(0);
  expect(result.stdout.trim().split('\n'), result.stdout).toHaveLength(1);
  expect(result.json, result.stdout).toMatchObject({ code });
  expect(String(result.json?.['msg'])).toMatch(message);
}

beforeAll(async () => {
  for (const prefix of ['tqr1', 'tqr2', 'tqr3']) await new Testbed(prefix, 80).removeLeftovers();
  runner = await bed.netns('runner');
  hub = await bed.macvlanHub();
  pod = await bed.macvlanPod(hub, 'pod', 2);
  tmp = mkdtempSync(`${tmpdir()}/tqr1-`);
});

afterAll(async () => {
  console.log(`[robustness] faults injected in the fault tests: ${faultsInjected}`);
  await bed.destroy();
  await crowd.destroy();
  rmSync(tmp, { recursive: true, force: true });
});

describe('hostile CNI_NETNS, CNI_IFNAME and stdin against real namespaces', () => {
  it('a directory, a regular file, /dev/null and a missing path are refused with code 4', async () => {
    const file = `${tmp}/not-a-netns`;
    writeFileSync(file, 'x');
    for (const [netns, message] of [
      ['/var/run/netns', /is not a network namespace/],
      [file, /is not a network namespace/],
      ['/dev/null', /is not a network namespace/],
      [`${tmp}/missing`, /does not exist/],
    ] as const) {
      for (const command of ['ADD', 'CHECK'] as const) await expectError(await call(command, { netns }), 4, new RegExp(`CNI_NETNS ${netns}.*${message.source}`));
    }
    // DEL of a netns that is gone succeeds; of a path that is not a netns it is refused
    expect(await call('DEL', { netns: `${tmp}/missing` })).toMatchObject({ exitCode: 0, stdout: '' });
    await expectError(await call('DEL', { netns: file }), 4, /is not a network namespace/);
    await expectClean();
  });

  it("the plugin's own netns is refused (so the node itself is never shaped)", async () => {
    for (const netns of [`/var/run/netns/${runner}`, '/proc/self/ns/net', '/proc/thread-self/ns/net']) {
      for (const command of ['ADD', 'CHECK', 'DEL'] as const) {
        await expectError(await call(command, { netns }), 4, /is the plugin's own network namespace: refusing to shape the host/);
      }
    }
    expect(await podLeftovers(runner)).toEqual({ ifbs: [], qdiscs: [], filters: [] });
  });

  it('a namespace file of another type (/proc/self/ns/uts) is refused as one that cannot be entered as a network namespace', async () => {
    // The file is on nsfs like a netns; nsenter --net= is what refuses it.
    for (const command of ['ADD', 'DEL'] as const) {
      await expectError(await call(command, { netns: '/proc/self/ns/uts' }), 4, /CNI_NETNS \/proc\/self\/ns\/uts cannot be entered as a network namespace/);
    }
  });

  it('an interface that is not in the pod is code 103 and leaves nothing (not even the ifb)', async () => {
    for (const extra of [policy, egressOnly, ingressOnly]) {
      await expectError(await call('ADD', { policy: extra, ifname: 'net9' }), 103, /interface net9 not found/);
      await expectClean();
      expect(strayLockFiles([{ path: pod.path, ifname: 'net9' }])).toEqual([]);
    }
    expect(await call('DEL', { ifname: 'net9' })).toMatchObject({ exitCode: 0, stdout: '' });
  });

  it('a name of an interface that exists but is not the attachment (lo) only ever touches that name', async () => {
    // lo is valid and inside the pod: shaping it is allowed and must stay confined to lo and its ifb
    const lo = { ...pod, ifname: 'lo' };
    expect((await call('ADD', { target: lo, policy: egressOnly })).exitCode).toBe(0);
    expect((await call('DEL', { target: lo, policy: egressOnly })).exitCode).toBe(0);
    await expectClean();
    await expectClean(lo);
  });

  it('a logFile under /proc does not hang the plugin (ADD answers within 5 s)', async () => {
    // pino.destination({ mkdir: true }) -> fs.mkdirSync(dirname, { recursive: true }), which spins
    // forever on procfs (mkdir answers ENOENT, its parent EEXIST): ADD never answers and holds the lock.
    try {
      const ran = await runPlugin(runner, { command: 'ADD', config: conf({ ...egressOnly, logFile: '/proc/tcqos-test/tcqos.log' }), netns: pod.path, ifname: 'eth0' }, 5_000);
      expect(ran.killedByTimer, 'ADD still running after 5 s').toBe(false);
    } finally {
      expect((await call('DEL', { policy: egressOnly })).exitCode).toBe(0);
      await expectClean();
    }
  });

  it('the logFile gets one line per ADD and DEL, naming the command and its outcome', async () => {
    // the plugin exits as soon as its result and its logs are out (bin/tcqos.ts): nothing may be lost
    const logFile = `${tmp}/logs/tcqos.log`;
    const logged = { ...egressOnly, logFile, logLevel: 'info' };
    expect((await call('ADD', { policy: logged })).exitCode).toBe(0);
    expect((await call('DEL', { policy: logged })).exitCode).toBe(0);
    const lines = readFileSync(logFile, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.map((line) => [line['command'], line['msg']])).toEqual([
      ['ADD', 'shaping installed'],
      ['DEL', 'shaping removed'],
    ]);
    await expectClean();
  });

  it('stdin over 1 MiB through the real binary is code 6, one JSON document, nothing applied', async () => {
    const config = JSON.stringify(conf());
    const huge = `${config.slice(0, -1)}${' '.repeat(2 * 1024 * 1024)}}`;
    await expectError(await call('ADD', { config: huge }), 6, /more than the 1048576 accepted/);
    await expectError(await call('ADD', { config: '' }), 6, /not valid JSON/);
    await expectError(await call('ADD', { config: config.slice(0, 100) }), 6, /not valid JSON/);
    await expectClean();
  });
});

describe('faults during ADD', () => {
  for (const point of ['after-read', 'after-ifb', 'after-tc'] as const) {
    it(`ADD killed ${point}: DEL leaves zero state, then ADD and CHECK succeed`, async () => {
      const killed = await call('ADD', { fault: `kill:${point}` });
      faultsInjected++;
      expect(killed.stdout, 'a killed plugin prints nothing').toBe('');
      expect(killed.exitCode).not.toBe(0);
      const deleted = await call('DEL');
      expect(deleted).toMatchObject({ exitCode: 0, stdout: '' });
      await expectClean(pod, `after kill:${point} and DEL`);
      expect((await call('ADD')).exitCode).toBe(0);
      await expectShaped(pod, policy, `after kill:${point}`);
      expect((await call('DEL')).exitCode).toBe(0);
      await expectClean();
    });

    it(`ADD killed ${point}: a retried ADD adopts what is left (its ifb included) and converges`, async () => {
      expect((await call('ADD', { fault: `kill:${point}` })).exitCode).not.toBe(0);
      faultsInjected++;
      const leftBehind = await podLeftovers(pod.netns);
      if (point !== 'after-tc') expect(leftBehind.ifbs, 'the ifb exists from the prepare step on').toEqual([`${pod.netns}:${ifbName('eth0')}`]);
      const again = await call('ADD');
      expect(again.exitCode, again.stdout).toBe(0);
      await expectShaped(pod, policy, `after an adopted kill:${point}`);
      expect((await call('DEL')).exitCode).toBe(0);
      await expectClean();
    });
  }

  it("a record's temp file left by a writer killed before its rename is removed by the attachment's next ADD and DEL, not left for GC", async () => {
    // named as writeAtomically names it; the soak once left one when a kill landed between the two
    const temp = `${TEST_STATE_DIR}/attachments/${pod.ifname}@tcqos-test.json.00112233aabbccdd.tmp`;
    expect((await call('ADD')).exitCode).toBe(0);
    for (const command of ['ADD', 'DEL'] as const) {
      writeFileSync(temp, '{"half":');
      expect((await call(command)).exitCode, command).toBe(0);
      expect(existsSync(temp), `after ${command}`).toBe(false);
    }
    await expectClean();
  });

  it('after ADD was killed with an ingress config, an ADD without ingress does not keep the orphan ifb', async () => {
    // The fast path only looks at the root qdiscs; the ifb a killed ADD created stays, and CHECK
    // then reports "ingress: ifb tcq... exists but ingress is not configured" (code 104).
    try {
      expect((await call('ADD', { fault: 'kill:after-ifb' })).exitCode).not.toBe(0);
      expect((await call('ADD', { policy: egressOnly })).exitCode).toBe(0);
      await expectShaped(pod, egressOnly, 'egress-only ADD after a killed ingress ADD');
    } finally {
      await call('DEL');
      await expectClean();
    }
  });

  it('a failing tc line at every position of the batch: code 100, everything rolled back, then ADD works', async () => {
    // the batch for `policy`: egress tree, ingress tree, ingress qdisc, redirect
    const lines = setupLines(planAttachment((await normalizeConfig(conf() as Record<string, unknown>)).policy, 'eth0', 1500)).length;
    for (let line = 0; line <= lines + 1; line++) {
      const failed = await call('ADD', { fault: `fail-line:${line}` });
      faultsInjected++;
      await expectError(failed, 100, /installing shaping on eth0/);
      expect(String(failed.json?.['details'])).toMatch(/failed line: qdisc add dev tcqos-fault-injected/);
      await expectClean(pod, `after fail-line:${line}`);
    }
    expect((await call('ADD')).exitCode).toBe(0);
    await expectShaped();
    // a failing line when tcqos's own tree is already there (the slow path) rolls back too
    await expectError(await call('ADD', { fault: 'fail-line:2', policy: egressOnly }), 100, /installing shaping/);
    faultsInjected++;
    await expectClean(pod, 'after a failed re-ADD');
  });

  it('SIGKILL at a random moment of ADD (0-40 ms, and 40-200 ms), 12 times: DEL + ADD + CHECK converge', async () => {
    // An ADD takes ~100 ms, most of it Node starting: 0-40 ms kills it early, 40-200 ms while ip/tc run.
    let landed = 0;
    for (let i = 0; i < 12; i++) {
      const killAfter = i % 2 === 0 ? Math.floor(Math.random() * 41) : 40 + Math.floor(Math.random() * 161);
      const killed = await runPlugin(runner, { command: 'ADD', config: conf(), netns: pod.path, ifname: 'eth0' }, killAfter);
      if (killed.killedByTimer) landed++;
      else expect(killed.exitCode, `ADD that was not killed: ${killed.stdout}`).toBe(0);
      const deleted = await call('DEL');
      expect(deleted, `DEL after a kill at ${killAfter} ms`).toMatchObject({ exitCode: 0, stdout: '' });
      await expectClean(pod, `after a kill at ${killAfter} ms and DEL`);
      expect((await call('ADD')).exitCode).toBe(0);
      await expectShaped(pod, policy, `after a kill at ${killAfter} ms`);
      // and DEL killed at a random moment, then DEL again
      const killedDel = await runPlugin(runner, { command: 'DEL', config: conf(), netns: pod.path, ifname: 'eth0' }, Math.floor(Math.random() * 161));
      if (killedDel.killedByTimer) landed++;
      expect((await call('DEL')).exitCode).toBe(0);
      await expectClean(pod, 'after a killed DEL and DEL');
    }
    faultsInjected += landed;
    console.log(`[robustness] random-time SIGKILL: ${landed} of 24 kills landed while the plugin ran`);
    expect(strayProcesses('tqr1')).toEqual([]);
  });
});

describe('foreign qdiscs are reported, never destroyed', () => {
  const tc = (...args: string[]) => must('ip', ['netns', 'exec', pod.netns, 'tc', ...args]);
  const qdiscsOf = async (): Promise<string[]> => (await podLeftovers(pod.netns)).qdiscs;

  /** A clsact as eBPF dataplanes install it, with a filter on its ingress hook (u32: no bpf needed). */
  const addClsact = async (): Promise<void> => {
    await tc('qdisc', 'add', 'dev', 'eth0', 'clsact');
    await tc('filter', 'add', 'dev', 'eth0', 'ingress', 'protocol', 'ip', 'pref', '7', 'u32', 'match', 'u32', '0', '0', 'flowid', '1:1');
  };
  const removeClsact = () => run('ip', ['netns', 'exec', pod.netns, 'tc', 'qdisc', 'del', 'dev', 'eth0', 'clsact']);

  it('a clsact qdisc: ADD with ingress shaping is code 102 and leaves it (and no ifb) in place', async () => {
    await addClsact();
    try {
      for (const extra of [policy, ingressOnly]) {
        await expectError(await call('ADD', { policy: extra }), 102, /eth0 already has a clsact ingress qdisc .*that tcqos did not install/);
        expect(await qdiscsOf()).toEqual([`${pod.netns}:eth0:clsact:ffff:`]);
        expect((await podLeftovers(pod.netns)).ifbs).toEqual([]);
      }
      expect((await call('DEL')).exitCode).toBe(0);
      expect(await qdiscsOf()).toEqual([`${pod.netns}:eth0:clsact:ffff:`]);
    } finally {
      await removeClsact();
    }
    await expectClean();
  });

  it('an empty clsact is not taken for tcqos\'s ingress qdisc (DEL fails with code 100, the pod cannot be deleted)', async () => {
    // readAttachmentState(): ingressIsOurs = ingress present && (no filters || our redirect), whatever
    // its kind; the teardown line `qdisc del dev eth0 ingress` then fails on a clsact.
    await tc('qdisc', 'add', 'dev', 'eth0', 'clsact');
    try {
      expect((await call('DEL')).exitCode).toBe(0);
      await expectError(await call('ADD', { policy: ingressOnly }), 102, /clsact/);
    } finally {
      await removeClsact();
    }
  });

  it('an ingress qdisc carrying someone else\'s filter: code 102, qdisc and filter kept', async () => {
    await tc('qdisc', 'add', 'dev', 'eth0', 'handle', 'ffff:', 'ingress');
    await tc('filter', 'add', 'dev', 'eth0', 'parent', 'ffff:', 'protocol', 'ip', 'pref', '7', 'u32', 'match', 'u32', '0', '0', 'flowid', '1:1');
    try {
      await expectError(await call('ADD', { policy: ingressOnly }), 102, /eth0 already has a ingress ingress qdisc|already has a .*ingress qdisc/);
      expect(await qdiscsOf()).toEqual([`${pod.netns}:eth0:ingress:ffff:`]);
      expect((await podLeftovers(pod.netns)).filters.filter((f) => f.includes(':ingress:u32:7')).length).toBeGreaterThan(0);
      expect((await call('DEL')).exitCode).toBe(0);
      expect(await qdiscsOf()).toEqual([`${pod.netns}:eth0:ingress:ffff:`]);
    } finally {
      await run('ip', ['netns', 'exec', pod.netns, 'tc', 'qdisc', 'del', 'dev', 'eth0', 'ingress']);
    }
    await expectClean();
  });

  it('egress shaping beside a foreign clsact, ingress shaping beside a foreign root qdisc: both kept', async () => {
    await addClsact();
    try {
      expect((await call('ADD', { policy: egressOnly })).exitCode).toBe(0);
      await expectShaped(pod, egressOnly);
      expect((await call('DEL')).exitCode).toBe(0);
      expect(await qdiscsOf()).toEqual([`${pod.netns}:eth0:clsact:ffff:`]);
    } finally {
      await removeClsact();
    }
    await tc('qdisc', 'add', 'dev', 'eth0', 'root', 'handle', '1:', 'tbf', 'rate', '1mbit', 'burst', '10kb', 'latency', '50ms');
    try {
      await expectError(await call('ADD', { policy: egressOnly }), 102, /eth0 already has a tbf root qdisc \(handle 1:\)/);
      expect((await call('ADD', { policy: ingressOnly })).exitCode).toBe(0);
      await expectShaped(pod, ingressOnly);
      expect((await call('DEL')).exitCode).toBe(0);
      expect(await qdiscsOf()).toEqual([`${pod.netns}:eth0:tbf:1:`]);
    } finally {
      await run('ip', ['netns', 'exec', pod.netns, 'tc', 'qdisc', 'del', 'dev', 'eth0', 'root']);
    }
    await expectClean();
  });
});

describe('a netns that disappears', () => {
  it('netns deleted between ADD and DEL: DEL succeeds', async () => {
    const gone = await bed.macvlanPod(hub, 'gone', 9);
    expect((await call('ADD', { target: gone })).exitCode).toBe(0);
    await must('ip', ['netns', 'del', gone.netns]);
    expect(await call('DEL', { target: gone })).toMatchObject({ exitCode: 0, stdout: '' });
    expect(strayLockFiles([{ path: gone.path, ifname: 'eth0' }])).toEqual([]);
  });

  it('ADD killed, then the netns deleted: DEL succeeds and GC removes the dead ADD\'s lock file', async () => {
    const gone = await bed.macvlanPod(hub, 'gone2', 10);
    expect((await call('ADD', { target: gone, fault: 'kill:after-tc' })).exitCode).not.toBe(0);
    faultsInjected++;
    await must('ip', ['netns', 'del', gone.netns]);
    expect(await call('DEL', { target: gone })).toMatchObject({ exitCode: 0, stdout: '' });
    // DEL returns before the lock when the netns is gone, so a killed ADD's lock file is GC's to remove
    expect((await call('GC')).exitCode).toBe(0);
    expect(strayLockFiles([{ path: gone.path, ifname: 'eth0' }])).toEqual([]);
  });

  it('DEL of a vanished netns also removes the lock file a killed ADD left (runtimes before CNI 1.1 never call GC)', async () => {
    const gone = await bed.macvlanPod(hub, 'gone3', 11);
    expect((await call('ADD', { target: gone, fault: 'kill:after-read' })).exitCode).not.toBe(0);
    await must('ip', ['netns', 'del', gone.netns]);
    try {
      expect(await call('DEL', { target: gone })).toMatchObject({ exitCode: 0, stdout: '' });
      expect(strayLockFiles([{ path: gone.path, ifname: 'eth0' }])).toEqual([]);
    } finally {
      rmSync(lockPath(TEST_STATE_DIR, gone.path, 'eth0'), { force: true });
    }
  });
});

describe('concurrency', () => {
  it('20 pods ADDed in parallel all succeed and CHECK; DELed in parallel, nothing is left', async () => {
    await crowd.removeLeftovers();
    const crowdRunner = await crowd.netns('runner');
    const crowdHub = await crowd.macvlanHub();
    const pods = await Promise.all(Array.from({ length: 20 }, (_, i) => crowd.macvlanPod(crowdHub, `p${i}`, 10 + i)));
    const configFor = (p: Pod) => ({ cniVersion: '1.0.0', name: 'crowd', type: 'tcqos', ...policy, prevResult: prevResultFor('1.0.0', p.path) });
    const all = (command: 'ADD' | 'CHECK' | 'DEL') =>
      Promise.all(pods.map((p) => invoke(crowdRunner, { command, config: configFor(p), netns: p.path, containerId: `crowd-${p.netns}` })));
    const started = Date.now();
    const added = await all('ADD');
    const addMs = Date.now() - started;
    expect(added.map((r) => r.exitCode), added.map((r) => r.stdout).join('\n')).toEqual(pods.map(() => 0));
    const checked = await all('CHECK');
    expect(checked.map((r) => r.exitCode), checked.map((r) => r.stdout).join('\n')).toEqual(pods.map(() => 0));
    for (const p of pods) expect((await podLeftovers(p.netns)).ifbs).toEqual([`${p.netns}:${ifbName('eth0')}`]);
    const deleted = await all('DEL');
    expect(deleted.map((r) => r.exitCode)).toEqual(pods.map(() => 0));
    const left = await leftovers('tqr2', pods);
    expect(left).toEqual({ ifbs: [], qdiscs: [], filters: [], processes: [], lockFiles: [] });
    console.log(`[robustness] 20 parallel ADDs took ${addMs} ms`);
    await crowd.destroy();
  });

  it('ADD and DEL of one attachment launched together 20 times: shaped or clean, never half', async () => {
    let shaped = 0;
    let clean = 0;
    for (let i = 0; i < 20; i++) {
      const delay = Math.floor(Math.random() * 30);
      const addFirst = i % 2 === 0;
      const later = <T>(work: () => Promise<T>): Promise<T> => new Promise((resolve, reject) => setTimeout(() => work().then(resolve, reject), delay));
      const [added, deleted] = await Promise.all([
        addFirst ? call('ADD') : later(() => call('ADD')),
        addFirst ? later(() => call('DEL')) : call('DEL'),
      ]);
      expect(added.exitCode, added.stdout).toBe(0);
      expect(deleted.exitCode, deleted.stdout).toBe(0);
      const left = await podLeftovers(pod.netns);
      if (left.ifbs.length || left.qdiscs.length || left.filters.length) {
        await expectShaped(pod, policy, `round ${i}: not clean, so it must be fully shaped (${JSON.stringify(left)})`);
        shaped++;
      } else {
        clean++;
      }
      expect(strayLockFiles([{ path: pod.path, ifname: 'eth0' }])).toEqual([]);
      await call('DEL');
    }
    console.log(`[robustness] ADD/DEL races: ${shaped} ended shaped, ${clean} ended clean`);
    await expectClean();
  });

  it('10 ADDs of one attachment at once are serialised: all succeed, CHECK passes, no lock file left', async () => {
    const added = await Promise.all(Array.from({ length: 10 }, () => call('ADD')));
    expect(added.map((r) => r.exitCode), added.map((r) => r.stdout).join('\n')).toEqual(added.map(() => 0));
    await expectShaped();
    expect((await call('DEL')).exitCode).toBe(0);
    await expectClean();
  });
});

describe('soak', () => {
  it('60 ADD/DEL cycles over 4 pods with random kills, failing lines and races leak nothing', async () => {
    const report = await runSoak({ cycles: 60, pods: 4, prefix: 'tqr3', subnet: 82, seed: Date.now() % 1_000_000 });
    console.log(`[robustness] soak:\n${formatReport(report)}`);
    expect(soakPassed(report), formatReport(report)).toBe(true);
    expect(report.killsInjected).toBeGreaterThan(10);
  }, 110_000);
});
