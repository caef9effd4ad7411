/**
 * The operator commands that must not surprise, against the kernel with the built binary: update
 * --dry-run changes nothing (kernel and record), an update that would unshape a direction or that
 * names another network is refused, a pod whose netns vanished is STALE in list (and in no uplink
 * total), named by update and dropped by gc, and gc beside an ADD in flight leaves it alone.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { invoke, operator, prevResultFor, TCQOS_BINARY, TEST_STATE_DIR } from '../helpers/plugin.ts';
import { must, run } from '../helpers/run.ts';
import { Testbed, type Pod } from '../helpers/testbed.ts';

const bed = new Testbed('tqopcm', 103);
let runner: string;

const conf = (target: Pod, extra: object, name = 'ops') => ({ cniVersion: '1.1.0', name, type: 'tcqos', ...extra, prevResult: prevResultFor('1.1.0', target.path, target.ifname) });
const add = (target: Pod, containerId: string, extra: object, name = 'ops') => invoke(runner, { command: 'ADD', config: conf(target, extra, name), netns: target.path, containerId });
const del = (target: Pod, containerId: string) => invoke(runner, { command: 'DEL', config: conf(target, {}), netns: target.path, containerId });
const update = (containerId: string, entry: object, ...flags: string[]) =>
  operator(runner, ['update', '--container', containerId, '--ifname', 'eth0', '--config', '-', ...flags], JSON.stringify(entry));
const recordText = (containerId: string) => readFileSync(join(TEST_STATE_DIR, 'attachments', `eth0@${containerId}.json`), 'utf8');

/** Everything tc shows of the pod's shaping, counters left out (a stray packet must not count as a change). */
async function kernelState(netns: string): Promise<string> {
  const lines: string[] = [];
  for (const what of [['qdisc', 'show'], ['class', 'show', 'dev', 'eth0'], ['filter', 'show', 'dev', 'eth0'], ['filter', 'show', 'dev', 'eth0', 'ingress']]) {
    lines.push(await must('ip', ['netns', 'exec', netns, 'tc', '-d', ...what]));
  }
  return lines.join('\n');
}

beforeAll(async () => {
  await bed.removeLeftovers();
  runner = await bed.netns('runner');
});

afterAll(() => bed.destroy());

describe('tcqos update cannot surprise', () => {
  let pod: Pod;
  const entry = { egress: { rate: '40mbit', classes: [{ name: 'db', rate: '20mbit', peers: ['198.18.103.9/32'] }] }, ingress: { rate: '30mbit' } };

  beforeAll(async () => {
    [pod] = await bed.vethPair('upd', 'updp', 2, 3);
    expect((await add(pod, 'upd-1', entry)).exitCode).toBe(0);
  });
  afterAll(() => del(pod, 'upd-1'));

  it('--dry-run prints the policy diff and the tc lines, and changes neither the kernel nor the record', async () => {
    const kernelBefore = await kernelState(pod.netns);
    const recordBefore = recordText('upd-1');
    const lowered = { ...entry, egress: { ...entry.egress, rate: '30mbit', classes: [{ ...entry.egress.classes[0], rate: '5mbit' }, { name: 'web', rate: '5mbit', peers: ['198.18.103.10/32'] }] } };
    const dry = await update('upd-1', lowered, '--dry-run');
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^dry run: nothing was changed on upd-1\/eth0$/m);
    expect(dry.stdout).toMatch(/^ {2}egress: rate 40 Mbit\/s -> 30 Mbit\/s, ceil 40 Mbit\/s -> 30 Mbit\/s$/m);
    expect(dry.stdout).toMatch(/^ {2}egress class db: rate 20 Mbit\/s -> 5 Mbit\/s/m);
    expect(dry.stdout).toMatch(/^ {2}egress class web: added \(rate 5 Mbit\/s/m);
    expect(dry.stdout).toMatch(/^ {2}tc class change dev eth0 parent 7c05:1 classid 7c05:10 htb rate 5000000bit/m);
    expect(dry.stdout).toMatch(/^ {2}tc class add dev eth0 .*classid 7c05:12 /m);
    expect(await kernelState(pod.netns)).toBe(kernelBefore);
    expect(recordText('upd-1')).toBe(recordBefore);
    const json = JSON.parse((await update('upd-1', lowered, '--dry-run', '--json')).stdout) as { dryRun: boolean; commands: string[]; policy: { egress: { rate: number } } };
    expect(json).toMatchObject({ dryRun: true, policy: { egress: { rate: 30_000_000 } } });
    expect(json.commands.length).toBeGreaterThan(3);
    expect(await kernelState(pod.netns)).toBe(kernelBefore);
  });

  it('refuses to unshape a direction without --allow-unshape, and a configuration for another network', async () => {
    const kernelBefore = await kernelState(pod.netns);
    const recordBefore = recordText('upd-1');
    const emptied = await update('upd-1', {});
    expect(emptied.exitCode).toBe(1);
    expect(emptied.stderr).toBe('tcqos update: this configuration removes all egress and ingress shaping of upd-1/eth0; pass --allow-unshape if that is meant (--dry-run shows the change)');
    const egressOnly = await update('upd-1', { egress: entry.egress });
    expect(egressOnly.exitCode).toBe(1);
    expect(egressOnly.stderr).toMatch(/removes all ingress shaping of upd-1\/eth0/);
    const otherNetwork = await update('upd-1', { cniVersion: '1.1.0', name: 'not-ops', plugins: [{ type: 'macvlan' }, { type: 'tcqos', ...entry }] });
    expect(otherNetwork.exitCode).toBe(1);
    expect(otherNetwork.stderr).toBe('tcqos update: the configuration is for network "not-ops", and upd-1/eth0 is on network "ops"');
    expect(await kernelState(pod.netns)).toBe(kernelBefore);
    expect(recordText('upd-1')).toBe(recordBefore);
    // Its own network's name is fine, and an explicit flag unshapes.
    expect((await update('upd-1', { name: 'ops', ...entry })).exitCode).toBe(0);
    const allowed = await update('upd-1', { egress: entry.egress }, '--allow-unshape');
    expect(allowed.exitCode, allowed.stderr).toBe(0);
    expect(allowed.stdout).toMatch(/qdisc del dev eth0 ingress/);
  });
});

describe('stale attachments', () => {
  it('are marked in list and left out of uplink totals; update names them; gc drops them once', async () => {
    const [kept] = await bed.vethPair('keep', 'keepp', 4, 5);
    const [gone] = await bed.vethPair('gone', 'gonep', 6, 7);
    const entry = { uplink: { name: 'up0', capacity: '100mbit' }, egress: { rate: '30mbit' } };
    try {
      expect((await add(kept, 'stale-keep', entry)).exitCode).toBe(0);
      expect((await add(gone, 'stale-gone', entry)).exitCode).toBe(0);
      type Listed = { attachments: Array<{ containerId: string; stale: boolean }>; uplinks: Array<{ name: string; egress: number; attachments: number }> };
      const listJson = async () => JSON.parse((await operator(runner, ['list', '--json'])).stdout) as Listed;
      const [both] = (await listJson()).uplinks;
      expect(both).toMatchObject({ name: 'up0', attachments: 2 });
      // The runtime crashed: the netns went without a DEL.
      await must('ip', ['netns', 'del', gone.netns]);
      const listed = await operator(runner, ['list']);
      expect(listed.stdout).toMatch(/^stale-gone\s+-\s+eth0\s+ops\s+.*\s+yes$/m);
      expect(listed.stdout).toMatch(/^stale-keep\s+-\s+eth0\s+ops\s+.*\s+no$/m);
      expect(listed.stdout).toMatch(/^up0\s+100 Mbit\/s\s+.*\s+1$/m);
      expect(listed.stderr).toMatch(/1 stale attachment/);
      const json = await listJson();
      expect(json.uplinks).toEqual([{ ...both, egress: both!.egress / 2, attachments: 1 }]);
      expect(json.attachments.filter((a) => a.containerId.startsWith('stale-')).map((a) => [a.containerId, a.stale])).toEqual([['stale-gone', true], ['stale-keep', false]]);

      const updated = await update('stale-gone', { egress: { rate: '10mbit' } });
      expect(updated.exitCode).toBe(1);
      expect(updated.stderr).toBe(`tcqos update: attachment stale-gone/eth0 is stale: its network namespace /var/run/netns/${gone.netns} is gone; "tcqos gc" drops its record`);

      const collected = await operator(runner, ['gc']);
      expect(collected.exitCode, collected.stderr).toBe(0);
      expect(collected.stdout).toBe(`dropped stale-gone/eth0: network namespace /var/run/netns/${gone.netns} was gone`);
      expect(existsSync(join(TEST_STATE_DIR, 'attachments', 'eth0@stale-gone.json'))).toBe(false);
      expect(existsSync(join(TEST_STATE_DIR, 'attachments', 'eth0@stale-keep.json'))).toBe(true);
      expect(await operator(runner, ['gc'])).toMatchObject({ exitCode: 0, stdout: 'nothing to drop' });
    } finally {
      await del(kept, 'stale-keep');
    }
  });

  it('gc beside an ADD in flight leaves the ADD, its lock and its record alone', async () => {
    const [pod] = await bed.vethPair('slow', 'slowp', 8, 9);
    const env = ['CNI_COMMAND=ADD', 'CNI_CONTAINERID=slow-add', `CNI_NETNS=${pod.path}`, 'CNI_IFNAME=eth0', 'CNI_PATH=/opt/cni/bin', `TCQOS_STATE_DIR=${TEST_STATE_DIR}`];
    // Every program the ADD runs starts 1.5 s late: it holds its lock for seconds.
    const adding = run(
      'ip',
      ['netns', 'exec', runner, 'env', '-i', ...env, 'strace', '-f', '-qq', '-o', '/dev/null', '-e', 'trace=execve', '-e', 'inject=execve:delay_enter=1500000', TCQOS_BINARY],
      { input: JSON.stringify(conf(pod, { egress: { rate: '20mbit' }, ingress: { rate: '20mbit' } })), timeoutMs: 90_000 },
    );
    try {
      // The lock held: a flock(2) lock on a file of the locks directory, as /proc/locks lists it.
      const locks = join(TEST_STATE_DIR, 'locks');
      const heldLock = () => {
        const held = new Set(readFileSync('/proc/locks', 'utf8').split('\n').flatMap((line) => (/\bFLOCK\b/.test(line) ? [line.split(/\s+/)[5]?.split(':')[2]] : [])));
        const files = existsSync(locks) ? readdirSync(locks) : [];
        return files.find((name) => held.has(String(statSync(join(locks, name), { throwIfNoEntry: false })?.ino)));
      };
      let lock: string | undefined;
      for (const deadline = Date.now() + 30_000; !lock && Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 20))) lock = heldLock();
      expect(lock, 'the ADD holds its lock').toBeDefined();
      const collected = await operator(runner, ['gc']);
      expect(collected.exitCode, collected.stderr).toBe(0);
      expect(collected.stdout).not.toMatch(/slow-add/);
      expect(heldLock(), 'the held lock is still there, still held').toBe(lock);
      const added = await adding;
      expect(added.exitCode, added.stdout + added.stderr).toBe(0);
      expect(JSON.parse(recordText('slow-add'))).toMatchObject({ containerId: 'slow-add', policy: { egress: { rate: 20_000_000 } } });
      expect(await must('ip', ['netns', 'exec', pod.netns, 'tc', 'qdisc', 'show', 'dev', 'eth0'])).toMatch(/qdisc htb 7c05: root/);
      const checked = await invoke(runner, { command: 'CHECK', config: conf(pod, { egress: { rate: '20mbit' }, ingress: { rate: '20mbit' } }), netns: pod.path, containerId: 'slow-add' });
      expect(checked.exitCode, checked.stdout).toBe(0);
    } finally {
      await adding;
      await del(pod, 'slow-add');
    }
  });
});
