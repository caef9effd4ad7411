/**
 * podman for tests, as this machine runs it (TRAPS.md: runc, cgroupfs, explicit ulimits), with
 * images, containers and podman's own state under one temporary directory that `remove` deletes.
 * `buildImage` runs scripts/build-image.sh into that storage.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { Ran } from './run.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

export class Podman {
  readonly root: string;
  private readonly env: Record<string, string>;

  constructor(prefix: string) {
    this.root = mkdtempSync(join(tmpdir(), `${prefix}-podman-`));
    writeFileSync(join(this.root, 'storage.conf'), `[storage]\ndriver = "vfs"\ngraphroot = "${this.root}/storage"\nrunroot = "${this.root}/run"\n`);
    this.env = { ...(process.env as Record<string, string>), CONTAINERS_STORAGE_CONF: join(this.root, 'storage.conf') };
  }

  /** scripts/build-image.sh IMAGE into this storage; throws with its stderr when it fails. */
  async buildImage(image: string): Promise<void> {
    const built = await execa('bash', [join(REPO, 'scripts/build-image.sh'), image], { env: this.env, reject: false, timeout: 300_000 });
    if (built.exitCode !== 0) throw new Error(`scripts/build-image.sh failed: ${String(built.stderr)}`);
  }

  run(args: readonly string[], timeoutMs = 120_000): Promise<Ran> {
    return execa(
      'podman',
      ['--runtime', 'runc', '--cgroup-manager', 'cgroupfs', '--events-backend', 'none', '--tmpdir', join(this.root, 'libpod'), ...args],
      { env: this.env, reject: false, timeout: timeoutMs, stdin: 'ignore' },
    ).then((result) => ({ exitCode: result.exitCode ?? 124, stdout: String(result.stdout), stderr: String(result.stderr) }));
  }

  /** Removes the image (if given) and everything under the root. */
  async remove(image?: string): Promise<void> {
    if (image) await this.run(['rmi', '--force', image]);
    rmSync(this.root, { recursive: true, force: true });
  }
}
