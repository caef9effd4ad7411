/**
 * One tcqos at a time per attachment (runtimes retry after timeouts, so ADD and DEL for the same
 * pod can overlap; an operator's update or the node agent can meet either) and per uplink
 * (admission adds up every attachment's share).
 *
 * A lock is a flock(2) lock on a file under `<stateDir>/locks`, held through tcqos's own open file
 * description: Node has no flock call, so util-linux's `flock` takes it on that description, passed
 * down as its fd 3, and exits; the lock stays with the description until tcqos closes it or dies.
 * The kernel releases it then, whatever PID namespace holder and waiter run in (the node agent has
 * its own): no pid is written, read or guessed. Waiting happens in the kernel (`flock -w`), bounded.
 *
 * A lock file exists only while someone holds or waits for it: a holder unlinks it before it lets
 * go. A waiter that then gets the lock holds it on an unlinked file, sees that the path no longer
 * names what it locked, and starts over on a new file. A holder killed before its unlink leaves a
 * file nobody holds: the next command takes it at once, and GC removes it.
 */
import { closeSync, constants, fstatSync, openSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { syncToolRunner, type ToolRunner } from '../netns/runner.ts';
import { toolPath } from '../netns/tools.ts';
import { ensurePrivateDir } from './state-dir.ts';

/** How long a command waits for a lock before answering "try again later". */
export const LOCK_TIMEOUT_MS = 20_000;
/** flock's exit status when the wait timed out (`-E`), apart from its own errors. */
const TIMED_OUT = 75;
const LOCK_FILE_FLAGS = constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW;

export class LockTimeoutError extends Error {}

export interface LockOptions {
  /** How `flock` runs: synchronously in the plugin, asynchronously in the agent. */
  readonly runner?: ToolRunner;
  readonly timeoutMs?: number;
}

function locksDir(stateDir: string): string {
  return `${stateDir}/locks`;
}

/** The lock of one attachment: its netns and interface name say which kernel objects it guards. */
export function lockPath(stateDir: string, netns: string, ifname: string): string {
  return `${locksDir(stateDir)}/${createHash('sha256').update(`${netns}\0${ifname}`).digest('hex').slice(0, 24)}.lock`;
}

/** The lock under which an uplink's admission is decided (the name passed the interface-name rule). */
export function uplinkLockPath(stateDir: string, uplink: string): string {
  return `${locksDir(stateDir)}/uplink-${uplink}.lock`;
}

/** Runs `work` holding the lock at `path`; throws LockTimeoutError when it cannot be had in time. */
export async function withLock<T>(path: string, work: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const fd = await acquire(path, options.runner ?? syncToolRunner, Date.now() + (options.timeoutMs ?? LOCK_TIMEOUT_MS));
  try {
    return await work();
  } finally {
    unlinkIfSame(path, fd);
    closeSync(fd);
  }
}

/**
 * Unlinks every lock file nobody holds (GC): files of commands that were killed. Each is taken
 * without waiting first, so a lock in use is never pulled from under its holder.
 */
export async function removeUnheldLocks(stateDir: string, runner: ToolRunner = syncToolRunner): Promise<number> {
  let names: string[];
  try {
    names = readdirSync(locksDir(stateDir));
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names.filter((candidate) => candidate.endsWith('.lock'))) {
    const path = `${locksDir(stateDir)}/${name}`;
    const fd = await tryOnce(path, runner);
    if (fd === undefined) continue;
    if (unlinkIfSame(path, fd)) removed++;
    closeSync(fd);
  }
  return removed;
}

async function acquire(path: string, runner: ToolRunner, deadline: number): Promise<number> {
  ensurePrivateDir(path.slice(0, path.lastIndexOf('/')));
  for (;;) {
    const fd = openSync(path, LOCK_FILE_FLAGS, 0o600);
    const seconds = Math.max(0, deadline - Date.now()) / 1000;
    let locked: boolean;
    try {
      locked = await flock(fd, ['-w', seconds.toFixed(3)], runner);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    if (!locked) {
      closeSync(fd);
      throw new LockTimeoutError(`another tcqos holds ${path} (waited ${Math.round(seconds)} s); try again`);
    }
    if (sameFile(path, fd)) return fd;
    // the holder before us unlinked it: what we hold locks nothing any more
    closeSync(fd);
  }
}

/** The lock at `path` if nobody holds it now, else undefined. */
async function tryOnce(path: string, runner: ToolRunner): Promise<number | undefined> {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  if ((await flock(fd, ['-n'], runner)) && sameFile(path, fd)) return fd;
  closeSync(fd);
  return undefined;
}

/** Takes an exclusive flock on `fd` through util-linux's flock; false when it was not had (busy, or timed out). */
async function flock(fd: number, wait: readonly string[], runner: ToolRunner): Promise<boolean> {
  const ran = await runner.run({ file: toolPath('flock'), args: ['--exclusive', ...wait, '-E', String(TIMED_OUT), '3'], input: '', fds: [fd] });
  if (ran.exitCode === 0) return true;
  if (ran.exitCode === TIMED_OUT) return false;
  throw new Error(`flock could not lock: ${String(ran.stderr ?? '').trim() || `exit ${ran.exitCode}`}`);
}

function sameFile(path: string, fd: number): boolean {
  try {
    const named = statSync(path);
    const held = fstatSync(fd);
    return named.ino === held.ino && named.dev === held.dev;
  } catch {
    return false;
  }
}

/** Unlinks the lock file if `path` still names the file `fd` holds (only a holder calls this). */
function unlinkIfSame(path: string, fd: number): boolean {
  if (!sameFile(path, fd)) return false;
  try {
    unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}
