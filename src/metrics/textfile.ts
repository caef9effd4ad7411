/**
 * Writing a file for node_exporter's textfile collector, which reads every `*.prom` file in its
 * directory on each scrape: it must never see half a file. So the text goes to a temporary file in the
 * same directory (same filesystem, so the rename is atomic) whose name does not end in `.prom`, and is
 * renamed over the target once complete.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export async function atomicWriteFile(path: string, text: string): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const file = await open(temp, 'wx', 0o644);
    try {
      await file.writeFile(text);
      // On disk before the rename: after a crash the target is the old text or the new, never empty.
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}
