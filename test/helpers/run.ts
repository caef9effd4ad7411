/** Running commands in tests: argv arrays, bounded in time, never a shell. */
import { execa } from 'execa';

export interface Ran {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export async function run(file: string, args: readonly string[], options: { input?: string; timeoutMs?: number } = {}): Promise<Ran> {
  const result = await execa(file, args, { input: options.input ?? '', reject: false, timeout: options.timeoutMs ?? 30_000 });
  return { exitCode: result.exitCode ?? 124, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** Runs and throws (with stderr) unless the command succeeds. */
export async function must(file: string, args: readonly string[], options: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  const result = await run(file, args, options);
  if (result.exitCode !== 0) throw new Error(`${file} ${args.join(' ')} failed (${result.exitCode}): ${result.stderr}`);
  return result.stdout;
}

export function inNetns(netns: string, file: string, args: readonly string[], options?: { input?: string; timeoutMs?: number }): Promise<string> {
  return must('ip', ['netns', 'exec', netns, file, ...args], options);
}
