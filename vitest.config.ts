import { defineConfig } from 'vitest/config';

/** Every project's plugin runs keep their registries under one directory removed at the end. */
const STATE_ROOT = 'test/helpers/state-root.ts';

// Kernel suites share one machine's network stack and its two cores: they run one file at a time,
// the integration files before the e2e ones (groupOrder: projects of different groups never
// overlap; iperf3 beside another suite's iperf3 measured 93% of a rate), and every file still uses
// its own namespace, link and address names.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], globalSetup: [STATE_ROOT], sequence: { groupOrder: 0 } } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
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
          sequence: { groupOrder: 2 },
          testTimeout: 180_000,
          hookTimeout: 120_000,
          globalSetup: [STATE_ROOT, 'test/e2e/global-setup.ts'],
        },
      },
    ],
  },
});
