/**
 * Runs a list of commands and times each from spawn to the close of its output, as a runtime waits
 * for a plugin. Started inside the runner namespace (`ip netns exec tqb-run node timed-worker.ts`)
 * so the plugins it starts create their host-side devices there, and so no `ip netns exec` sits
 * inside a measured interval. Reads a Job as JSON on stdin, prints a WorkerReport as JSON.
 *
 * sequence: one step after another; concurrent: every step started at once (wall time reported).
 * Every step is reported; untimed ones (state resets) only so their failures are seen.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface Step {
  readonly key: string;
  readonly argv: readonly string[];
  readonly env: Record<string, string>;
  readonly input?: string;
  /** Untimed steps (state resets) still run, in order, but are not reported. */
  readonly timed: boolean;
}

export interface Job {
  readonly mode: 'sequence' | 'concurrent';
  readonly steps: readonly Step[];
}

export interface StepResult {
  readonly key: string;
  readonly ms: number;
  readonly timed: boolean;
  readonly exitCode: number;
  readonly output: string;
  /** CPU (user + system) of the step and everything it started, in ms; sequence mode only (10 ms ticks). */
  readonly cpuMs: number | undefined;
}

export interface WorkerReport {
  readonly results: readonly StepResult[];
  readonly wallMs: number;
  /** CPU (user + system) of every process the job started, in ms (10 ms ticks). */
  readonly cpuMs: number;
}

/** CPU time of this process's waited-for children (and theirs): cutime + cstime of /proc/self/stat. */
function childrenCpuMs(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  // after "pid (comm) ": state is field 3, so cutime (16) and cstime (17) are at 13 and 14
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

const TIMEOUT_MS = 60_000;

function runStep(step: Step, measureCpu = false): Promise<StepResult> {
  const cpuBefore = measureCpu ? childrenCpuMs() : 0;
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const child = spawn(step.argv[0]!, step.argv.slice(1), { env: step.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stdin.on('error', () => undefined);
    child.stdin.end(step.input ?? '');
    const done = (exitCode: number): void => {
      clearTimeout(timer);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const cpuMs = measureCpu ? childrenCpuMs() - cpuBefore : undefined;
      resolve({ key: step.key, ms, timed: step.timed, exitCode, output: exitCode === 0 ? '' : output.slice(0, 400), cpuMs });
    };
    child.on('error', (error) => {
      output += String(error);
      done(127);
    });
    child.on('close', (code, signal) => done(code ?? (signal ? 128 : 1)));
  });
}

async function main(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const job = JSON.parse(Buffer.concat(chunks).toString()) as Job;
  const started = process.hrtime.bigint();
  const cpuBefore = childrenCpuMs();
  let results: StepResult[];
  if (job.mode === 'concurrent') {
    results = await Promise.all(job.steps.map((step) => runStep(step)));
  } else {
    results = [];
    for (const step of job.steps) results.push(await runStep(step, true));
  }
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  process.stdout.write(JSON.stringify({ results, wallMs, cpuMs: childrenCpuMs() - cpuBefore } satisfies WorkerReport));
}

await main();
