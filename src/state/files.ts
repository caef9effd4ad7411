/**
 * Writing a file of tcqos's state as root: a new file under an unpredictable name, created
 * exclusively and never through a link someone placed there (O_EXCL, O_NOFOLLOW, mode 0600), then
 * renamed over the target, so a reader sees the old file or the new one, never half of one.
 */
import { closeSync, constants, openSync, renameSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

/** What such a temp file's name ends with (a writer killed before its rename leaves one). */
export const TEMP_SUFFIX = '.tmp';
const TEMP_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

export function writeAtomically(target: string, data: string | Uint8Array): void {
  const temp = `${target}.${randomBytes(8).toString('hex')}${TEMP_SUFFIX}`;
  const fd = openSync(temp, TEMP_FLAGS, 0o600);
  try {
    writeFileSync(fd, data);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, target);
}
