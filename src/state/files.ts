/**
 * Files of tcqos's state, as root. Written: a new file under an unpredictable name, created
 * exclusively and never through a link someone placed there (O_EXCL, O_NOFOLLOW, mode 0600), then
 * renamed over the target, so a reader sees the old file or the new one, never half of one. Read:
 * never through a link nor blocking on a FIFO placed there, and bounded in size.
 */
import { closeSync, constants, fstatSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname } from 'node:path';

/** What such a temp file's name ends with (a writer killed before its rename leaves one). */
export const TEMP_SUFFIX = '.tmp';
const TEMP_NAME_BYTES = 8;
const TEMP_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

export function writeAtomically(target: string, data: string | Uint8Array): void {
  const temp = `${target}.${randomBytes(TEMP_NAME_BYTES).toString('hex')}${TEMP_SUFFIX}`;
  const fd = openSync(temp, TEMP_FLAGS, 0o600);
  try {
    writeFileSync(fd, data);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, target);
}

/**
 * Removes the temp files writers of `target` left when killed before their rename; returns how
 * many. Only for a holder of the lock every writer of `target` takes: then no live writer has a
 * temp file there, and a killed one's need not wait for GC's age rule (ABANDONED_TEMP_MS).
 */
export function dropTempsOf(target: string): number {
  const prefix = `${basename(target)}.`;
  const random = new RegExp(`^[0-9a-f]{${2 * TEMP_NAME_BYTES}}$`);
  const isTemp = (name: string) => name.startsWith(prefix) && name.endsWith(TEMP_SUFFIX) && random.test(name.slice(prefix.length, -TEMP_SUFFIX.length));
  let names: string[];
  try {
    names = readdirSync(dirname(target)).filter(isTemp);
  } catch {
    return 0;
  }
  for (const name of names) rmSync(`${dirname(target)}/${name}`, { force: true });
  return names.length;
}

/** A state file as read: absent, its parsed JSON (unchecked), or why it cannot be what it should be. */
export type JsonFileRead = { readonly missing: true } | { readonly value: unknown } | { readonly problem: string };

/** Reads the JSON file of one `what` (a record, an entry...): problems name the `what`, not the path. */
export function readJsonFile(path: string, what: string, maxBytes: number): JsonFileRead {
  let text: string;
  try {
    const fd = openSync(path, READ_FLAGS);
    try {
      const stat = fstatSync(fd);
      if (!stat.isFile()) return { problem: `not a regular file, not ${what}` };
      if (stat.size > maxBytes) return { problem: `larger than ${what} can be` };
      text = readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { missing: true };
    return { problem: code === 'ELOOP' ? `a symlink, not ${what}` : (error as Error).message };
  }
  try {
    return { value: JSON.parse(text) };
  } catch {
    return { problem: 'not valid JSON (truncated or overwritten)' };
  }
}
