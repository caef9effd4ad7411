/**
 * Global setup of the e2e project: builds the libcni driver (test/e2e/cnidriver, Go, offline against
 * Debian's packaged libcni; build.sh installs golang-go, golang-github-appc-cni-dev and
 * containernetworking-plugins with apt when they are missing) and hands its path to the tests as
 * `inject('cnidriver')`. The tcqos binary itself is built by `bash scripts/build.sh` (`make test-e2e`
 * does it first); a missing one is reported here instead of as a dozen chain failures.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Absolute path of the built cnidriver (libcni AddNetworkList / CheckNetworkList / DelNetworkList). */
    cnidriver: string;
  }
}

const here = fileURLToPath(new URL('.', import.meta.url));
export const CNIDRIVER = `${here}cnidriver/cnidriver`;
const TCQOS = fileURLToPath(new URL('../../dist/tcqos', import.meta.url));
const REFERENCE_PLUGINS = ['macvlan', 'ptp', 'host-local'].map((name) => `/usr/lib/cni/${name}`);

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export default async function setup(project: TestProject): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the e2e suite creates network namespaces: run it as root');
  if (!executable(TCQOS)) throw new Error(`${TCQOS} is missing: run "bash scripts/build.sh" (or "make test-e2e") first`);
  try {
    // Rebuilt every run (Go's build cache makes that ~0.5 s), so edits to main.go are never stale.
    await promisify(execFile)('bash', [`${here}cnidriver/build.sh`, CNIDRIVER], { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const failed = error as { stderr?: string; message: string };
    throw new Error(`building the cnidriver failed: ${failed.stderr || failed.message}`);
  }
  for (const plugin of REFERENCE_PLUGINS) {
    if (!executable(plugin)) throw new Error(`${plugin} is missing (Debian package containernetworking-plugins)`);
  }
  project.provide('cnidriver', CNIDRIVER);
}
