/**
 * Removing a private containerd's traces without its help, synchronously, so it also works from a
 * process 'exit' hook and on the leftovers of a run that was killed: the sandboxes' pause processes
 * (their init.pid in the task bundles), the daemon and its shims (their command lines name the dir),
 * every mount under the dir (pods' netns, rootfs, shm), the sandboxes' cgroups, the shims' sockets,
 * then the dir itself.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { daemonPaths } from './config.ts';

/** Every private containerd dir of this suite starts so (tmpdir()/tqctr-ctr-XXXXXX). */
export const DIR_PREFIX = join(tmpdir(), 'tqctr-ctr-');
const SHIM_SOCKET_DIR = '/run/containerd/s';

function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function commandLine(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return undefined; // gone
  }
}

/** The daemon and its shims: every process whose command line names `dir` (its config, its socket). */
function processesNaming(dir: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => pid !== process.pid && commandLine(pid)?.includes(dir));
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); // a zombie has left its cgroup
  } catch {
    return false;
  }
}

/** Synchronous (usable in an 'exit' hook): waits up to 2 s for SIGKILLed processes to be gone. */
function waitGone(pids: readonly number[]): void {
  const tick = new Int32Array(new SharedArrayBuffer(4));
  for (let waited = 0; waited < 2_000 && pids.some(running); waited += 20) Atomics.wait(tick, 0, 0, 20);
}

/** Task bundles: <state>/io.containerd.runtime.v2.task/<namespace>/<id>/, with the task's init.pid. */
function bundles(state: string): string[] {
  const tasks = join(state, 'io.containerd.runtime.v2.task');
  const found: string[] = [];
  for (const namespace of existsSync(tasks) ? readdirSync(tasks) : []) {
    for (const id of readdirSync(join(tasks, namespace))) found.push(join(tasks, namespace, id));
  }
  return found;
}

/**
 * A killed shim leaves its socket in containerd's fixed /run/containerd/s/ (its bundle's `address`
 * names it); the dirs go too when nothing else is in them (they are not ours when a system
 * containerd runs, and then they are not empty).
 */
function removeShimSockets(bundleDirs: readonly string[]): void {
  for (const bundle of bundleDirs) {
    try {
      const socket = readFileSync(join(bundle, 'address'), 'utf8').trim().replace(/^unix:\/\//, '');
      if (socket.startsWith(`${SHIM_SOCKET_DIR}/`)) rmSync(socket, { force: true });
    } catch {
      // no address: the shim never started
    }
  }
  for (const path of [SHIM_SOCKET_DIR, dirname(SHIM_SOCKET_DIR)]) {
    try {
      rmdirSync(path);
    } catch {
      // not empty, or absent
    }
  }
}

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((point) => point === dir || point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length); // deepest first
}

/** The cgroupfs path a node's sandboxes get as cgroup_parent: named after its dir, so teardown finds it. */
export function cgroupParentOf(dir: string): string {
  return `/${basename(dir)}`;
}

const CGROUP_ROOT = '/sys/fs/cgroup';

/** rmdir of a cgroup and its children (cgroupfs removes a group with rmdir, deepest first, once empty). */
function removeCgroup(path: string): void {
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.isDirectory()) removeCgroup(join(path, entry.name));
  }
  rmdirSync(path);
}

function removeCgroups(dir: string): void {
  for (const hierarchy of existsSync(CGROUP_ROOT) ? readdirSync(CGROUP_ROOT) : []) {
    const path = join(CGROUP_ROOT, hierarchy, cgroupParentOf(dir));
    try {
      if (existsSync(path)) removeCgroup(path);
    } catch {
      // still in use (a process we could not kill): left for the next run's leftover pass
    }
  }
}

export function forceTeardown(dir: string): void {
  // Sandboxes first (the pause process runs /pause, not a path of ours: its pid is in our bundle),
  // then the daemon and its shims, found by our dir in their command lines.
  const taskBundles = bundles(daemonPaths(dir).state);
  const sandboxes = taskBundles
    .map((bundle) => readPid(join(bundle, 'init.pid')))
    .filter((pid): pid is number => pid !== undefined && running(pid));
  const killed = [...sandboxes, ...processesNaming(dir)];
  killed.forEach(kill);
  waitGone(killed); // their cgroups can only go once they have
  removeShimSockets(taskBundles);
  for (const point of mountsUnder(dir)) {
    try {
      execFileSync('umount', ['-l', point], { stdio: 'ignore', timeout: 10_000 });
    } catch {
      // already gone with its parent
    }
  }
  removeCgroups(dir);
  rmSync(dir, { recursive: true, force: true });
}

/** What a killed earlier run of this suite left: its daemons, mounts and dirs. */
export function removeLeftoverDaemons(): void {
  const parent = tmpdir();
  for (const name of readdirSync(parent)) {
    const dir = join(parent, name);
    if (dir.startsWith(DIR_PREFIX)) forceTeardown(dir);
  }
}
