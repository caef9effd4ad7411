/**
 * File mechanics of install/uninstall: atomic replacement in the same directory, content
 * comparison. A runtime may read a conflist or start the plugin at any moment, so a file is never
 * seen half-written: it is written whole under a temporary name, synced, then renamed over.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';

export interface FileOwnership {
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

const TEMPORARY_MARK = '.tcqos-tmp.';

/**
 * A name in `path`'s directory that no runtime loads: libcni reads every *.conf, *.conflist and
 * *.json (dot files included), and a plugin is looked up by its exact type name.
 */
export function temporaryPath(path: string): string {
  return join(dirname(path), `.${basename(path)}${TEMPORARY_MARK}${process.pid}.${randomBytes(4).toString('hex')}`);
}

/**
 * Removes what an install killed halfway left in `directory` (an init container out of memory is
 * restarted, and every try would leave a copy of a 100 MB binary). One install runs per node at a
 * time (the DaemonSet's pod), so any temporary file found is a leftover.
 */
export async function removeLeftovers(directory: string): Promise<void> {
  const leftovers = (await readdir(directory)).filter((name) => name.startsWith('.') && name.includes(TEMPORARY_MARK));
  await Promise.all(leftovers.map((name) => unlink(join(directory, name)).catch(() => undefined)));
}

/** Writes `data` to `path` whole or not at all, with the given mode (and owner, when it differs). */
export async function writeFileAtomic(path: string, data: string | Buffer, ownership: FileOwnership): Promise<void> {
  const temporary = temporaryPath(path);
  await writeSynced(temporary, ownership, (handle) => handle.writeFile(data));
  try {
    await renameSynced(temporary, path);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
}

/**
 * Creates `path` (which must not exist) through `fill`, sets its mode and owner, and syncs it.
 * The file is removed again when any step fails.
 */
export async function writeSynced(path: string, ownership: FileOwnership, fill: (handle: FileHandle) => Promise<void>): Promise<void> {
  const handle = await open(path, 'wx', ownership.mode);
  try {
    await fill(handle);
    await handle.chmod(ownership.mode); // open's mode went through the umask
    if (ownership.uid !== process.getuid?.() || ownership.gid !== process.getgid?.()) await handle.chown(ownership.uid, ownership.gid);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await unlink(path).catch(() => undefined);
    throw error;
  }
  await handle.close();
}

/** Renames within one directory and syncs the directory, so the new name survives a crash. */
export async function renameSynced(from: string, to: string): Promise<void> {
  await rename(from, to);
  await syncDirectory(dirname(to));
}

export async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}
