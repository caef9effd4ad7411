/**
 * The attachment lock across PID namespaces, as the node runs it: the runtime's CNI calls in the
 * host's PID namespace, the DaemonSet's agent in a PID namespace of its own (`unshare --pid --fork`).
 * A holder is kept in the middle of its work by strace, which delays every program the plugin
 * starts (its `flock`, `ip` and `tc`) by a few seconds; the lock is seen held in /proc/locks.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa, type ResultPromise } from 'execa';
import { lockPath } from '../../src/state/lock.ts';
import { podLeftovers } from '../../bench/soak.ts';
import { invoke, prevResultFor, TCQOS_BINARY, TEST_STATE_DIR, type PluginResult } from '../helpers/plugin.ts';
import { Testbed, type Pod } from '../helpers/testbed.ts';

const bed = new Testbed('tqlck', 120);
let runner: string;
let hub: string;

const policy = { egress: { rate: '20mbit' }, ingress: { rate: '20mbit' } };

function conf(pod: Pod): object {
  return { cniVersion: '1.1.0', name: 'locks', type: 'tcqos', ...policy, prevResult: prevResultFor('1.1.0', pod.path) };
}

function env(command: string, pod: Pod): string[] {
  const vars = { CNI_COMMAND: command, CNI_CONTAINERID: 'locks', CNI_NETNS: pod.path, CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin', TCQOS_STATE_DIR: TEST_STATE_DIR };
  return ['env', '-i', ...Object.entries(vars).map(([key, value]) => `${key}=${value}`)];
}

/** The plugin, from the runner netns, in a PID namespace of its own when asked. */
function start(command: 'ADD' | 'DEL', pod: Pod, options: { ownPidNamespace: boolean; delaySeconds?: number }): ResultPromise {
  const pidNamespace = options.ownPidNamespace ? ['unshare', '--pid', '--fork', '--mount-proc', '--kill-child'] : [];
  const slowed = options.delaySeconds ? ['strace', '-f', '-qq', '-o', '/dev/null', '-e', 'trace=execve', '-e', `inject=execve:delay_enter=${options.delaySeconds}s`] : [];
  return execa('ip', ['netns', 'exec', runner, ...pidNamespace, ...slowed, ...env(command, pod), TCQOS_BINARY], {
    input: JSON.stringify(conf(pod)),
    reject: false,
    timeout: 60_000,
  });
}

/** Whether the kernel lists a flock on the file at `path` (its inode, in /proc/locks). */
function heldInKernel(path: string): boolean {
  if (!existsSync(path)) return false;
  const inode = statSync(path).ino;
  return readFileSync('/proc/locks', 'utf8')
    .split('\n')
    .some((line) => / FLOCK /.test(line) && line.split(/\s+/).some((field) => field.endsWith(`:${inode}`)));
}

async function until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function del(pod: Pod): Promise<PluginResult> {
  return invoke(runner, { command: 'DEL', config: conf(pod), netns: pod.path, containerId: 'locks' });
}

beforeAll(async () => {
  await bed.removeLeftovers();
  runner = await bed.netns('runner');
  hub = await bed.macvlanHub();
});

afterAll(async () => {
  await bed.destroy();
});

describe('the attachment lock, across PID namespaces', () => {
  it('a holder SIGKILLed in its own PID namespace lets a host DEL go on at once', async () => {
    const pod = await bed.macvlanPod(hub, 'killed', 2);
    const lock = lockPath(TEST_STATE_DIR, pod.path, 'eth0');
    // every program the ADD starts waits 4 s: it holds the lock from its first `flock` on
    const holder = start('ADD', pod, { ownPidNamespace: true, delaySeconds: 4 });
    await until(() => heldInKernel(lock), 'the ADD holds the lock');
    holder.kill('SIGKILL');
    await holder;
    const started = Date.now();
    const deleted = await del(pod);
    const waited = Date.now() - started;
    console.log(`[locks] host DEL after a PID-namespace holder was killed: ${waited} ms`);
    expect(deleted.exitCode, deleted.stdout).toBe(0);
    // the lock timeout is 20 s: a DEL that took the dead holder's lock for a live one would wait it out
    expect(waited).toBeLessThan(3_000);
    expect(await podLeftovers(pod.netns)).toEqual({ ifbs: [], qdiscs: [], filters: [] });
    expect(existsSync(lock)).toBe(false);
  });

  for (const holderInOwnNamespace of [false, true]) {
    const where = holderInOwnNamespace ? 'in its own PID namespace, the DEL on the host' : 'on the host, the DEL in its own PID namespace';
    it(`a live holder is waited for (holder ${where})`, async () => {
      const pod = await bed.macvlanPod(hub, holderInOwnNamespace ? 'live1' : 'live2', holderInOwnNamespace ? 3 : 4);
      const lock = lockPath(TEST_STATE_DIR, pod.path, 'eth0');
      const holder = start('ADD', pod, { ownPidNamespace: holderInOwnNamespace, delaySeconds: 2 });
      await until(() => heldInKernel(lock), 'the ADD holds the lock');
      const waiter = start('DEL', pod, { ownPidNamespace: !holderInOwnNamespace });
      let holderEnded = 0;
      let waiterEnded = 0;
      const [added, deleted] = await Promise.all([
        holder.then((result) => ((holderEnded = Date.now()), result)),
        waiter.then((result) => ((waiterEnded = Date.now()), result)),
      ]);
      expect(added.exitCode, String(added.stdout)).toBe(0);
      expect(deleted.exitCode, String(deleted.stdout)).toBe(0);
      // two writers would let the DEL finish first and the ADD install afterwards
      expect(waiterEnded).toBeGreaterThanOrEqual(holderEnded);
      expect(await podLeftovers(pod.netns)).toEqual({ ifbs: [], qdiscs: [], filters: [] });
      expect(existsSync(lock)).toBe(false);
    });
  }
});
