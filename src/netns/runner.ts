/**
 * How a session starts its tools. A CNI command's runs are steps that each need the last one's
 * output, and execa's synchronous path skips the stream machinery of the asynchronous one (ADD
 * ~5 ms faster, measured): the plugin runs them synchronously. A long-running process (the node
 * agent) must never block its event loop on a child — its watch, its queue and /healthz go on while
 * tc runs — so it runs them asynchronously, a bounded number at a time.
 */
import { closeSync, openSync } from 'node:fs';
import { execa, execaSync, type Options, type Result, type SyncOptions, type SyncResult } from 'execa';
import { CHILD_ENV } from './tools.ts';

/** A child's outcome as execa reports it (exit code, output, timeout). */
export type RawRun = Result | SyncResult;

export interface RunRequest {
  readonly file: string;
  readonly args: readonly string[];
  readonly input: string;
  /** Extra file descriptors for the child, from its fd 3 on. */
  readonly fds: readonly number[];
}

export interface ToolRunner {
  run(request: RunRequest): Promise<RawRun>;
}

export const TOOL_TIMEOUT_MS = 30_000;

const RUN_OPTIONS = {
  reject: false,
  env: CHILD_ENV,
  extendEnv: false,
  timeout: TOOL_TIMEOUT_MS,
  stripFinalNewline: false,
} satisfies SyncOptions & Options;

/** execa hands an integer fd to child_process as it is (verified); its types list integers only for the first three slots. */
function stdioWith(fds: readonly number[]): ['pipe', 'pipe', 'pipe'] {
  return ['pipe', 'pipe', 'pipe', ...fds] as unknown as ['pipe', 'pipe', 'pipe'];
}

/** Runs the child to its end and only then returns: the plugin's way. */
export const syncToolRunner: ToolRunner = {
  run: (request) => Promise.resolve(execaSync(request.file, [...request.args], { ...RUN_OPTIONS, stdio: stdioWith(request.fds), input: request.input })),
};

/** Runs children asynchronously, at most `limit` at a time (the others wait their turn, in order). */
export function asyncToolRunner(limit: number): ToolRunner {
  let running = 0;
  const waiting: Array<() => void> = [];
  const release = () => {
    running--;
    waiting.shift()?.();
  };
  return {
    async run(request) {
      if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
      running++;
      try {
        return await execa(request.file, [...request.args], { ...RUN_OPTIONS, stdio: stdioWith(request.fds), input: request.input });
      } finally {
        release();
      }
    },
  };
}

/**
 * Starts a child and returns at once, for a step whose kernel work (deleting a link waits for RCU
 * grace periods) can overlap the runs that follow. Not killed when tcqos exits (`cleanup: false`):
 * work the kernel has accepted finishes on its own.
 */
export function startInBackground(request: RunRequest): { pid: number | undefined; done: Promise<RawRun> } {
  const subprocess = execa(request.file, [...request.args], { ...RUN_OPTIONS, stdio: stdioWith(request.fds), input: request.input, cleanup: false });
  return { pid: subprocess.pid, done: subprocess };
}

/**
 * Runs the embedding Node (`--version`) through both execa paths while the startup snapshot is
 * built, with an fd in the fourth slot as a session passes the namespace: execa's code, synchronous
 * (ADD's runs) and asynchronous (DEL's ifb deletion), is then compiled in the snapshot, not on a
 * runtime's clock.
 */
export async function warmUpToolRunner(): Promise<void> {
  const fd = openSync('/dev/null', 'r');
  try {
    const request = { file: process.execPath, args: ['--version'], input: '', fds: [fd] };
    await syncToolRunner.run(request);
    await startInBackground(request).done;
  } finally {
    closeSync(fd);
  }
}
