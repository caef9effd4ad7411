/** `dist/tcqos agent` as a child process of a test: its JSON log lines, its port, stopped by its pid. */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { agentGet, type Answer } from './agent-client.ts';
import type { FakeApiServer } from './fake-apiserver.ts';
import { TCQOS_BINARY } from './plugin.ts';

export interface AgentStart {
  readonly node: string;
  /** The state directory; the agent's settings file and kubeconfig are written there. */
  readonly stateDir: string;
  readonly api: FakeApiServer;
  /** The agent's settings file (metricsAuth "none" serves plain HTTP). */
  readonly settings: Record<string, unknown>;
  /** The bearer token `get` sends unless told otherwise. */
  readonly token?: string;
}

export class AgentProcess {
  readonly lines: Array<Record<string, unknown>> = [];
  private readonly child: ChildProcess;
  private readonly exited: Promise<number | null>;
  private readonly scheme: 'http' | 'https';
  private readonly token: string | undefined;
  private buffered = '';
  private code: number | null | undefined;

  private constructor(child: ChildProcess, scheme: 'http' | 'https', token: string | undefined) {
    this.child = child;
    this.scheme = scheme;
    this.token = token;
    child.stderr!.on('data', (chunk: Buffer) => {
      this.buffered += chunk.toString();
      const lines = this.buffered.split('\n');
      this.buffered = lines.pop()!;
      for (const line of lines) {
        try {
          this.lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          this.lines.push({ msg: `(not JSON) ${line}` });
        }
      }
    });
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    void this.exited.then((code) => (this.code = code));
  }

  /** Starts the agent and resolves once it is listening and /healthz answers 200. */
  static async start(options: AgentStart): Promise<AgentProcess> {
    const settings = join(options.stateDir, 'agent.json');
    const kubeconfig = join(options.stateDir, 'kubeconfig');
    writeFileSync(settings, JSON.stringify(options.settings));
    options.api.writeKubeconfig(kubeconfig);
    const child = spawn(TCQOS_BINARY, ['agent', '--node', options.node, '--listen', '127.0.0.1:0', '--kubeconfig', kubeconfig, '--settings', settings], {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', TCQOS_STATE_DIR: options.stateDir },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const started = new AgentProcess(child, options.settings['metricsAuth'] === 'none' ? 'http' : 'https', options.token);
    await until(() => started.port !== undefined || started.exitedEarly, 10_000, () => `the agent did not start:\n${started.log()}`);
    if (started.exitedEarly) throw new Error(`the agent exited:\n${started.log()}`);
    await until(async () => (await started.get('/healthz')).status === 200, 10_000, () => `the agent is not healthy:\n${started.log()}`);
    return started;
  }

  get exitedEarly(): boolean {
    return this.code !== undefined;
  }

  get port(): number | undefined {
    return this.lines.find((line) => line['msg'] === 'tcqos agent started')?.['port'] as number | undefined;
  }

  /** GET (over HTTPS: the agent's own self-signed certificate, not verified), with the start's token unless `token` says otherwise (null: none). */
  async get(path: string, token: string | null | undefined = this.token): Promise<Answer> {
    try {
      return await agentGet({ scheme: this.scheme, host: '127.0.0.1', port: this.port! }, path, token ? { token } : {});
    } catch (error) {
      return { status: 0, text: String(error), headers: {}, ms: 0 };
    }
  }

  /** The value of one series on /metrics (NaN when absent). */
  async metric(series: string): Promise<number> {
    const { text } = await this.get('/metrics');
    const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
    return Number(line?.slice(series.length + 1));
  }

  /** The first log line with this message after `since` (ms since the epoch), if any. */
  logged(message: string, since = 0): Record<string, unknown> | undefined {
    return this.lines.find((line) => line['msg'] === message && (line['time'] as number) >= since);
  }

  log(): string {
    return this.lines.map((line) => JSON.stringify(line)).join('\n');
  }

  /** SIGTERM; resolves with the exit code (SIGKILL after 10 s). */
  async stop(): Promise<number | null> {
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

/** Polls `check` every 20 ms; resolves with the ms it took, throws `why()` after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, why: () => string): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(why());
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return Date.now() - started;
}
