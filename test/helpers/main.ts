/** Calls src/main in-process exactly as bin/tcqos does, capturing stdout and stderr. */
import { main } from '../../src/main.ts';

export interface MainResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly json: Record<string, unknown> | undefined;
}

export async function callMain(env: Record<string, string>, stdin: string | Buffer = '', argv: string[] = []): Promise<MainResult> {
  let stdout = '';
  let stderr = '';
  const exitCode = await main({
    argv,
    env,
    readStdin: async () => (typeof stdin === 'string' ? Buffer.from(stdin) : stdin),
    writeStdout: (text) => {
      stdout += text;
    },
    writeStderr: (text) => {
      stderr += text;
    },
  });
  return { exitCode, stdout, stderr, json: jsonOrUndefined(stdout) };
}

function jsonOrUndefined(text: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export const ATTACHMENT_ENV = {
  CNI_CONTAINERID: 'unit-test',
  CNI_NETNS: '/var/run/netns/tcqos-unit-does-not-exist',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin',
};
