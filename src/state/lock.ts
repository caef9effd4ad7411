/**
 * One tcqos at a time per attachment (runtimes retry after timeouts, so ADD and DEL for the same
 * pod can overlap; an operator's update can meet either) and per uplink (admission adds up every
 * attachment's share). A lock file holds the owner's pid; a lock whose owner died (SIGKILL) is
 * taken over.
 */
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

/** How long a command waits for a lock before answering "try again later". */
export const LOCK_TIMEOUT_MS = 20_000;

export class LockTimeoutError extends Error {}

/** Whether a process still runs (a pid in a lock or temp file name may belong to a dead command). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
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

/** Runs `work` holding the lock file at `path`. */
export async function withLock<T>(path: string, work: () => Promise<T>, timeoutMs = LOCK_TIMEOUT_MS): Promise<T> {
  mkdirSync(path.slice(0, path.lastIndexOf('/')), { recursive: true, mode: 0o700 });
  const deadline = Date.now() + timeoutMs;
  for (let wait = 2; ; wait = Math.min(wait * 2, 50)) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      if (removeStaleLock(path)) continue;
      const owner = readLockOwner(path);
      if (Date.now() > deadline) throw new LockTimeoutError(`another tcqos (pid ${owner}) holds ${path}; try again`);
      await sleep(wait);
    }
  }
  try {
    return await work();
  } finally {
    removeIfOwnedBy(path, String(process.pid));
  }
}

/** A lock is stale when its owner is dead, or when it never got an owner (killed between create and write). */
export function removeStaleLock(path: string): boolean {
  const owner = readLockOwner(path);
  const pid = Number.parseInt(owner, 10);
  const stale = Number.isInteger(pid) && pid > 0 ? !processAlive(pid) : ageMs(path) > 2_000;
  if (stale) removeIfOwnedBy(path, owner);
  return stale;
}

function ageMs(path: string): number {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/** Removes the locks of tcqos processes that died holding them (GC). */
export function removeStaleLocks(stateDir: string): number {
  const dir = locksDir(stateDir);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  return names.filter((name) => name.endsWith('.lock') && removeStaleLock(`${dir}/${name}`)).length;
}

function readLockOwner(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function removeIfOwnedBy(path: string, owner: string): void {
  if (readLockOwner(path) === owner) {
    try {
      unlinkSync(path);
    } catch {
      // already gone
    }
  }
}
