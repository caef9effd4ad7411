/**
 * Runs ip or tc inside a network namespace: `nsenter --net=PATH -- TOOL ARGS`, never a shell.
 *
 * Synchronously as a rule: a command's tool runs are steps that each need the last one's output,
 * and execa's synchronous path skips the stream machinery of the asynchronous one (ADD ~5 ms
 * faster, measured). execa is imported statically and exercised while the startup snapshot is built
 * (`warmUpToolRunner`), so its code is compiled before a runtime starts the plugin.
 */
import { execa, execaSync, type Options, type Result, type SyncOptions, type SyncResult } from 'execa';
import { CHILD_ENV, toolPath, type Tool } from './tools.ts';

export interface ToolRun {
  readonly command: string;
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A tool that exited non-zero, with everything a user needs to see why. */
export class ToolError extends Error {
  readonly run: ToolRun;
  constructor(run: ToolRun) {
    super(`${run.command} failed (exit ${run.exitCode}): ${run.stderr.trim().split('\n').slice(0, 3).join('; ')}`);
    this.run = run;
  }
}

/** nsenter itself could not enter CNI_NETNS (e.g. a namespace file of another type). */
export class NetnsEnterError extends Error {}

const TIMEOUT_MS = 30_000;

const RUN_OPTIONS = {
  reject: false,
  env: CHILD_ENV,
  extendEnv: false,
  timeout: TIMEOUT_MS,
  stripFinalNewline: false,
} satisfies SyncOptions & Options;

/** Runs the tool; returns its output whatever the exit code. */
export function runInNetns(netns: string, tool: Tool, args: readonly string[], input?: string): ToolRun {
  return toToolRun(netns, tool, args, execaSync(...nsenterCommand(netns, tool, args), { ...RUN_OPTIONS, input: input ?? '' }));
}

/**
 * Starts the tool and returns at once, for a step whose kernel work (deleting a link waits for RCU
 * grace periods) can overlap the synchronous runs that follow.
 */
export async function startInNetns(netns: string, tool: Tool, args: readonly string[]): Promise<ToolRun> {
  return toToolRun(netns, tool, args, await execa(...nsenterCommand(netns, tool, args), { ...RUN_OPTIONS, input: '' }));
}

function nsenterCommand(netns: string, tool: Tool, args: readonly string[]): [string, string[]] {
  return [toolPath('nsenter'), [`--net=${netns}`, '--', toolPath(tool), ...args]];
}

function toToolRun(netns: string, tool: Tool, args: readonly string[], result: Result | SyncResult): ToolRun {
  const stderr = String(result.stderr ?? '');
  const nsenterFailure = /^nsenter: (.*)$/m.exec(stderr);
  if (nsenterFailure) throw new NetnsEnterError(`${netns} cannot be entered as a network namespace: ${nsenterFailure[1]}`);
  return {
    command: `${tool} ${args.join(' ')}`,
    exitCode: result.exitCode ?? (result.timedOut ? 124 : 128),
    stdout: String(result.stdout ?? ''),
    stderr: stderr || (result.timedOut ? `timed out after ${TIMEOUT_MS} ms` : result.message ?? ''),
  };
}

/** Runs the tool and throws a ToolError unless it exits 0. */
export function mustRunInNetns(netns: string, tool: Tool, args: readonly string[], input?: string): ToolRun {
  const run = runInNetns(netns, tool, args, input);
  if (run.exitCode !== 0) throw new ToolError(run);
  return run;
}

/**
 * Runs the embedding Node once (`--version`) through the same execa path, while the startup
 * snapshot is built: execa's code is then compiled in the snapshot, not on a runtime's clock.
 */
export function warmUpToolRunner(): void {
  execaSync(process.execPath, ['--version'], { ...RUN_OPTIONS, input: '' });
}
