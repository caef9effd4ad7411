/**
 * Runs ip or tc inside a network namespace: `nsenter --net=PATH -- TOOL ARGS`, never a shell.
 * execa is imported statically: its set-up then sits in the binary's V8 code cache, which made ADD
 * ~10 ms faster than loading it on first use (and VERSION ~6 ms slower).
 */
import { execa } from 'execa';
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

/** Runs the tool; resolves with its output whatever the exit code. */
export async function runInNetns(netns: string, tool: Tool, args: readonly string[], input?: string): Promise<ToolRun> {
  const result = await execa(toolPath('nsenter'), [`--net=${netns}`, '--', toolPath(tool), ...args], {
    input: input ?? '',
    reject: false,
    env: CHILD_ENV,
    extendEnv: false,
    timeout: TIMEOUT_MS,
    stripFinalNewline: false,
  });
  const stderr = String(result.stderr ?? '');
  const nsenterFailure = /^nsenter: (.*)$/m.exec(stderr);
  if (nsenterFailure) throw new NetnsEnterError(`${netns} cannot be entered as a network namespace: ${nsenterFailure[1]}`);
  return {
    command: `${tool} ${args.join(' ')}`,
    exitCode: result.exitCode ?? (result.timedOut ? 124 : 128),
    stdout: String(result.stdout ?? ''),
    stderr: String(result.stderr ?? '') || (result.timedOut ? `timed out after ${TIMEOUT_MS} ms` : result.message ?? ''),
  };
}

/** Runs the tool and throws a ToolError unless it exits 0. */
export async function mustRunInNetns(netns: string, tool: Tool, args: readonly string[], input?: string): Promise<ToolRun> {
  const run = await runInNetns(netns, tool, args, input);
  if (run.exitCode !== 0) throw new ToolError(run);
  return run;
}
