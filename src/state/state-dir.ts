/**
 * tcqos's state directory is trusted: its records say which namespaces and links DEL and GC act
 * on, and tcqos writes there as root. So it and everything on the way to it must be writable by
 * root (or tcqos's own user) alone: whoever could write there could plant a record, or a symlink
 * where tcqos is about to create a file.
 *
 * - A directory tcqos creates gets mode 0700.
 * - One already there is accepted when it is a real directory (not a symlink), owned by root or
 *   the effective user, and not writable by group or others; its mode is left as is (a DaemonSet's
 *   `DirectoryOrCreate` hostPath makes /run/tcqos 0755, root's: nobody else can change anything in
 *   it, and the records and locks sit in 0700 directories below). Anything else is refused with a
 *   message saying what to fix: tcqos does not chmod or chown what someone else made.
 * - Every directory on the way must be owned by root or the effective user and not writable by
 *   group or others, unless it is sticky (as /tmp is: others cannot rename or remove what is not
 *   theirs). Those are followed if symlinks (/var/run -> /run): what is checked is where they lead.
 */
import { lstatSync, mkdirSync, statSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';

export class UnsafeStateDirError extends Error {}

const STICKY = 0o1000;
const GROUP_OR_OTHER_WRITE = 0o022;

/** Creates `path` (mode 0700, parents too) unless it exists, then checks it; throws UnsafeStateDirError. */
export function ensurePrivateDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  checkPrivateDir(path);
}

/** Checks an existing `path` as described above; a missing one is fine (nothing in it to trust). */
export function checkPrivateDir(path: string): void {
  const own = lstatSync(path, { throwIfNoEntry: false });
  if (!own) return;
  if (own.isSymbolicLink()) throw new UnsafeStateDirError(`state directory ${path} is a symlink: make it a directory (tcqos does not follow links there)`);
  if (!own.isDirectory()) throw new UnsafeStateDirError(`state directory ${path} is not a directory`);
  refuseUnlessPrivate(path, own, false);
  for (let parent = dirname(path); ; parent = dirname(parent)) {
    const stats = statSync(parent);
    refuseUnlessPrivate(parent, stats, true);
    if (parent === dirname(parent)) break;
  }
}

function refuseUnlessPrivate(path: string, stats: Stats, onTheWay: boolean): void {
  const what = onTheWay ? `${path}, on the way to the state directory,` : `state directory ${path}`;
  const euid = process.geteuid?.() ?? 0;
  if (stats.uid !== 0 && stats.uid !== euid) {
    throw new UnsafeStateDirError(`${what} belongs to uid ${stats.uid}, not root${euid ? ` or uid ${euid}` : ''}: chown it (or pick another stateDir)`);
  }
  if (stats.mode & GROUP_OR_OTHER_WRITE && !(onTheWay && stats.mode & STICKY)) {
    const mode = (stats.mode & 0o7777).toString(8).padStart(4, '0');
    const who = [stats.mode & 0o020 ? 'its group' : '', stats.mode & 0o002 ? 'others' : ''].filter(Boolean).join(' and ');
    throw new UnsafeStateDirError(`${what} is writable by ${who} (mode ${mode}): chmod go-w it`);
  }
}
