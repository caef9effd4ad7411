/**
 * Global setup of every test project: one directory holding the registries and locks of all the
 * plugin runs of this test run (test/helpers/plugin.ts makes one per test file inside it), removed
 * when the run ends — worker processes can end without running their own exit hooks.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const STATE_ROOT_VARIABLE = 'TCQOS_TEST_STATE_ROOT';

export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'tcqos-tests-'));
  process.env[STATE_ROOT_VARIABLE] = root;
  return () => rmSync(root, { recursive: true, force: true });
}
