import { defineConfig } from 'vitest/config';

/** Every project's plugin runs keep their registries under one directory removed at the end. */
const STATE_ROOT = 'test/helpers/state-root.ts';

// Kernel suites share one machine's network stack: they run one file at a time, and every file
// still uses its own namespace, link and address names.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], globalSetup: [STATE_ROOT] } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 60_000,
          globalSetup: [STATE_ROOT],
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 120_000,
          globalSetup: [STATE_ROOT, 'test/e2e/global-setup.ts'],
        },
      },
    ],
  },
});
