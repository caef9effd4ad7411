/** ADD / CHECK / DEL against the real kernel: convergence, idempotence, drift, rollback, two attachments. */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SUPPORTED_VERSIONS, versionAtLeast } from '../../src/cni/version.ts';
import { ifbName } from '../../src/tc/handles.ts';
import { invoke, prevResultFor } from '../helpers/plugin.ts';
import { must, run } from '../helpers/run.ts';
import { installedQdiscs, linkNames } from '../helpers/tc-state.ts';
import { Testbed, type Pod } from '../helpers/testbed.ts';

const bed = new Testbed('tqlif', 62);
let runner: string;
let hub: string;
let pod: Pod;

const policy = {
  egress: { rate: '50mbit', classes: [{ name: 'db', rate: '40mbit', peers: ['198.18.62.3/32'] }] },
  ingress: { rate: '30mbit', classes: [{ name: 'db', rate: '20mbit', ceil: '30mbit', peers: ['2001:2:3e::3/128'] }] },
};

function conf(extra: object = policy, ifname = 'eth0', target: Pod = pod): object {
  return { cniVersion: '1.0.0', name: 'life', type: 'tcqos', ...extra, prevResult: prevResultFor('1.0.0', target.path, ifname) };
}

const call = (command: 'ADD' | 'DEL' | 'CHECK', config: object = conf(), ifname = 'eth0', extraEnv?: Record<string, string>, netns = pod.path) =>
  invoke(runner, { command, config, netns, ifname, ...(extraEnv ? { extraEnv } : {}) });

beforeAll(async () => {
  await bed.removeLeftovers();
  runner = await bed.netns('runner');
  hub = await bed.macvlanHub();
  pod = await bed.macvlanPod(hub, 'pod', 2);
});

afterAll(() => bed.destroy());

afterEach(async () => {
  await call('DEL');
  await call('DEL', conf(policy, 'net1'), 'net1');
});

describe('ADD, CHECK and DEL on a macvlan pod', () => {
  it('ADD installs HTB on eth0, an ifb with its own HTB, and the redirect; CHECK passes', async () => {
    const added = await call('ADD');
    expect(added.exitCode, added.stdout).toBe(0);
    expect(await installedQdiscs(pod.netns)).toEqual(
      [`eth0:htb:7c05:`, `eth0:ingress:ffff:`, `${ifbName('eth0')}:htb:7c05:`].sort(),
    );
    const checked = await call('CHECK');
    expect(checked.exitCode, checked.stdout).toBe(0);
    expect(checked.stdout).toBe('');
  });

  it('ADD twice converges to the configured state instead of failing', async () => {
    expect((await call('ADD')).exitCode).toBe(0);
    const changed = { ...policy, egress: { rate: '20mbit' } };
    const again = await call('ADD', conf(changed));
    expect(again.exitCode, again.stdout).toBe(0);
    expect((await call('CHECK', conf(changed))).exitCode).toBe(0);
    expect((await call('CHECK', conf(policy))).json).toMatchObject({ code: 104 });
  });

  it('DEL removes everything tcqos made and succeeds when run twice', async () => {
    expect((await call('ADD')).exitCode).toBe(0);
    expect((await call('DEL')).exitCode).toBe(0);
    expect(await installedQdiscs(pod.netns)).toEqual([]);
    expect(await linkNames(pod.netns)).not.toContain(ifbName('eth0'));
    const second = await call('DEL');
    expect(second).toMatchObject({ exitCode: 0, stdout: '' });
  });

  it('DEL succeeds when ADD never ran and when the interface is gone', async () => {
    expect((await call('DEL', conf(policy, 'net9'), 'net9')).exitCode).toBe(0);
  });

  it('CHECK fails naming the drift when someone deletes the ifb', async () => {
    expect((await call('ADD')).exitCode).toBe(0);
    await must('ip', ['-n', pod.netns, 'link', 'del', ifbName('eth0')]);
    const checked = await call('CHECK');
    expect(checked.json).toMatchObject({ code: 104 });
    expect(String(checked.json?.['msg'])).toMatch(new RegExp(`ingress: ifb ${ifbName('eth0')} is missing`));
  });

  it('CHECK fails naming the class when someone changes a class rate', async () => {
    expect((await call('ADD')).exitCode).toBe(0);
    await must('ip', ['netns', 'exec', pod.netns, 'tc', 'class', 'change', 'dev', 'eth0', 'parent', '7c05:1', 'classid', '7c05:10', 'htb', 'rate', '5mbit', 'ceil', '40mbit', 'quantum', '5000']);
    const checked = await call('CHECK');
    expect(checked.json).toMatchObject({ code: 104 });
    expect(String(checked.json?.['msg'])).toMatch(/egress: class "db" \(7c05:10\) rate is 5mbit, expected 40mbit/);
  });

  it('CHECK fails when the shaping was never installed', async () => {
    const checked = await call('CHECK');
    expect(checked.json).toMatchObject({ code: 104 });
    expect(String(checked.json?.['msg'])).toMatch(/egress: root qdisc on eth0 is noqueue/);
  });

  it('a foreign root qdisc is reported, not destroyed', async () => {
    await must('ip', ['netns', 'exec', pod.netns, 'tc', 'qdisc', 'add', 'dev', 'eth0', 'root', 'handle', '1:', 'tbf', 'rate', '1mbit', 'burst', '10kb', 'latency', '50ms']);
    try {
      const added = await call('ADD');
      expect(added.json).toMatchObject({ code: 102 });
      expect(String(added.json?.['msg'])).toMatch(/eth0 already has a tbf root qdisc \(handle 1:\) that tcqos did not install/);
      expect(await installedQdiscs(pod.netns)).toEqual(['eth0:tbf:1:']);
      expect((await call('DEL')).exitCode).toBe(0);
      expect(await installedQdiscs(pod.netns)).toEqual(['eth0:tbf:1:']);
    } finally {
      await run('ip', ['netns', 'exec', pod.netns, 'tc', 'qdisc', 'del', 'dev', 'eth0', 'root']);
    }
  });

  it('ADD that fails halfway leaves nothing behind', async () => {
    for (const line of [1, 4, 9]) {
      const failed = await call('ADD', conf(), 'eth0', { TCQOS_FAULT: `fail-line:${line}` });
      expect(failed.json, `failing at line ${line}`).toMatchObject({ code: 100 });
      expect(String(failed.json?.['details'])).toMatch(/failed line: qdisc add dev tcqos-fault-injected/);
      expect(await installedQdiscs(pod.netns)).toEqual([]);
      expect(await linkNames(pod.netns)).not.toContain(ifbName('eth0'));
    }
  });

  it('DEL succeeds after the runtime deleted the netns', async () => {
    const gone = await bed.macvlanPod(hub, 'gone', 9);
    expect((await call('ADD', conf(policy, 'eth0', gone), 'eth0', undefined, gone.path)).exitCode).toBe(0);
    await must('ip', ['netns', 'del', gone.netns]);
    const deleted = await call('DEL', conf(policy, 'eth0', gone), 'eth0', undefined, gone.path);
    expect(deleted).toMatchObject({ exitCode: 0, stdout: '' });
  });
});

describe('two attachments in one pod', () => {
  it('eth0 and net1 each get their own ifb and trees, and DEL of one leaves the other', async () => {
    await bed.addMacvlan(hub, pod, 'net1', 12);
    try {
      const net1Policy = { ingressRate: 5_000_000, ingressBurst: 50_000, egressRate: 7_000_000, egressBurst: 70_000 };
      expect((await call('ADD')).exitCode).toBe(0);
      expect((await call('ADD', conf(net1Policy, 'net1'), 'net1')).exitCode).toBe(0);
      const links = await linkNames(pod.netns);
      expect(links).toContain(ifbName('eth0'));
      expect(links).toContain(ifbName('net1'));
      expect((await call('CHECK')).exitCode).toBe(0);
      expect((await call('CHECK', conf(net1Policy, 'net1'), 'net1')).exitCode).toBe(0);
      expect((await call('CHECK', conf(policy, 'net1'), 'net1')).json).toMatchObject({ code: 104 });
      expect((await call('DEL')).exitCode).toBe(0);
      expect(await installedQdiscs(pod.netns)).toEqual(
        [`net1:htb:7c05:`, `net1:ingress:ffff:`, `${ifbName('net1')}:htb:7c05:`].sort(),
      );
      expect((await call('CHECK', conf(net1Policy, 'net1'), 'net1')).exitCode).toBe(0);
    } finally {
      await run('ip', ['-n', pod.netns, 'link', 'del', 'net1']);
    }
  });
});

/**
 * The lifecycle at every cniVersion: the version matters at the protocol edge (what CHECK and GC
 * exist in, how the result is passed on), so each gets one compact round on its own pod.
 */
describe.each(SUPPORTED_VERSIONS)('the lifecycle at cniVersion %s', (version) => {
  let target: Pod;
  const versioned = (extra: object = policy): object => ({ cniVersion: version, name: 'life', type: 'tcqos', ...extra, prevResult: prevResultFor(version, target.path) });
  const callAt = (command: 'ADD' | 'DEL' | 'CHECK' | 'GC', config: object = versioned(), extraEnv?: Record<string, string>) =>
    invoke(runner, { command, config, netns: target.path, containerId: `life-${version}`, ...(extraEnv ? { extraEnv } : {}) });

  beforeAll(async () => {
    target = await bed.macvlanPod(hub, `v${version.replaceAll('.', '')}`, 20 + SUPPORTED_VERSIONS.indexOf(version));
  });

  it('ADD passes prevResult on byte for byte, CHECK passes where the version has it, DEL twice leaves nothing', async () => {
    const config = versioned();
    const added = await callAt('ADD', config);
    expect(added.exitCode, added.stdout).toBe(0);
    expect(added.stdout).toBe(JSON.stringify((config as { prevResult: object }).prevResult));
    const checked = await callAt('CHECK');
    if (versionAtLeast(version, '0.4.0')) expect(checked).toMatchObject({ exitCode: 0, stdout: '' });
    else expect(checked.json).toMatchObject({ code: 1 });
    expect((await callAt('DEL')).exitCode).toBe(0);
    expect(await installedQdiscs(target.netns)).toEqual([]);
    expect(await callAt('DEL')).toMatchObject({ exitCode: 0, stdout: '' });
  });

  it('an ADD that fails halfway leaves nothing, and the error is one JSON document at the version', async () => {
    const failed = await callAt('ADD', versioned(), { TCQOS_FAULT: 'fail-line:3' });
    expect(failed.json).toMatchObject({ cniVersion: version, code: 100 });
    expect(await installedQdiscs(target.netns)).toEqual([]);
    expect(await linkNames(target.netns)).not.toContain(ifbName('eth0'));
  });

  it('GC exists from 1.1.0 on, and removes nothing the runtime still lists', async () => {
    expect((await callAt('ADD')).exitCode).toBe(0);
    const collected = await callAt('GC', { ...versioned(), 'cni.dev/valid-attachments': [{ containerID: `life-${version}`, ifname: 'eth0' }] });
    if (versionAtLeast(version, '1.1.0')) expect(collected).toMatchObject({ exitCode: 0, stdout: '' });
    else expect(collected.json).toMatchObject({ code: 1 });
    expect(await installedQdiscs(target.netns)).toHaveLength(3);
    expect((await callAt('DEL')).exitCode).toBe(0);
  });
});
