/**
 * A namespace session: the pod's netns opened once, checked once, and every ip/tc run entered
 * through that open file (`nsenter --net=/proc/self/fd/3` with the fd passed down), never through
 * the path again, so the namespace checked is the namespace used.
 *
 * Runs are synchronous as a rule: a command's tool runs are steps that each need the last one's
 * output, and execa's synchronous path skips the stream machinery of the asynchronous one (ADD
 * ~5 ms faster, measured). execa is imported statically and exercised while the startup snapshot
 * is built (`warmUpToolRunner`), so its code is compiled before a runtime starts the plugin.
 */
import { closeSync, fstatSync, openSync, readFileSync, statfsSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, execaSync, type Options, type Result, type SyncOptions, type SyncResult } from 'execa';
import { NO_FAULTS, type Faults } from './faults.ts';
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

/** A tool started in the background: its pid (to look into its namespace) and its outcome. */
export interface StartedRun {
  readonly pid: number | undefined;
  readonly done: Promise<ToolRun>;
}

export type UnusableReason = 'missing' | 'not-a-netns' | 'own';

/** The path cannot be used as the pod's network namespace. */
export class NetnsUnusableError extends Error {
  readonly reason: UnusableReason;
  constructor(path: string, reason: UnusableReason) {
    super(
      reason === 'missing'
        ? `${path} does not exist`
        : reason === 'not-a-netns'
          ? `${path} is not a network namespace`
          : `${path} is the plugin's own network namespace: refusing to shape the host`,
    );
    this.reason = reason;
  }
}

/** nsenter itself could not enter the namespace (e.g. a namespace file of another type). */
export class NetnsEnterError extends Error {}

const NSFS_MAGIC = 0x6e736673;
const TIMEOUT_MS = 30_000;
/** The namespace's fd as the child sees it: the first slot after stdin, stdout and stderr. */
const CHILD_NETNS_FD = 3;

const RUN_OPTIONS = {
  reject: false,
  env: CHILD_ENV,
  extendEnv: false,
  timeout: TIMEOUT_MS,
  stripFinalNewline: false,
} satisfies SyncOptions & Options;

export class NetnsSession {
  readonly path: string;
  readonly faults: Faults;
  private readonly fd: number;

  private constructor(path: string, fd: number, faults: Faults) {
    this.path = path;
    this.fd = fd;
    this.faults = faults;
  }

  /** Opens `path` and checks that it is a network namespace other than the plugin's own. */
  static open(path: string, faults: Faults = NO_FAULTS): NetnsSession {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      throw new NetnsUnusableError(path, 'missing');
    }
    try {
      // statfs through the open file: the checked object is the one every run enters.
      if (statfsSync(`/proc/self/fd/${fd}`).type !== NSFS_MAGIC) throw new NetnsUnusableError(path, 'not-a-netns');
      // A plugin asked to shape its own namespace would shape the node itself (its uplink included).
      const own = statSync('/proc/self/ns/net');
      const target = fstatSync(fd);
      if (own.ino === target.ino && own.dev === target.dev) throw new NetnsUnusableError(path, 'own');
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    return new NetnsSession(path, fd, faults);
  }

  /** Runs the tool; returns its output whatever the exit code. */
  run(tool: Tool, args: readonly string[], input?: string): ToolRun {
    return this.toToolRun(tool, args, execaSync(...this.command(tool, args), { ...this.options(), input: input ?? '' }));
  }

  /** Runs the tool and throws a ToolError unless it exits 0. */
  mustRun(tool: Tool, args: readonly string[], input?: string): ToolRun {
    const run = this.run(tool, args, input);
    if (run.exitCode !== 0) throw new ToolError(run);
    return run;
  }

  /**
   * Starts the tool and returns at once, for a step whose kernel work (deleting a link waits for RCU
   * grace periods) can overlap the synchronous runs that follow. Not killed when tcqos exits
   * (`cleanup: false`): work the kernel has accepted finishes on its own.
   */
  start(tool: Tool, args: readonly string[]): StartedRun {
    const subprocess = execa(...this.command(tool, args), { ...this.options(), input: '', cleanup: false });
    return { pid: subprocess.pid, done: subprocess.then((result) => this.toToolRun(tool, args, result)) };
  }

  /**
   * Resolves to true once `device` has left the namespace as `started` sees it from inside (the
   * kernel shows a process its own namespace's devices in /proc/PID/net/dev: no process to start),
   * or to false once `started` has ended first. Polls every millisecond.
   */
  async whenDeviceGone(started: StartedRun, device: string): Promise<boolean> {
    let ended = false;
    void started.done.then(
      () => (ended = true),
      () => (ended = true),
    );
    const ours = fstatSync(this.fd);
    const listed = new RegExp(`^\\s*${device.replace(/\W/g, '\\$&')}:`, 'm');
    while (!ended && started.pid !== undefined) {
      try {
        const seen = statSync(`/proc/${started.pid}/ns/net`);
        // Until nsenter has entered, the child sees tcqos's own namespace.
        if (seen.ino === ours.ino && seen.dev === ours.dev && !listed.test(readFileSync(`/proc/${started.pid}/net/dev`, 'latin1'))) return true;
      } catch {
        // the child is gone: its outcome tells
      }
      await sleep(1);
    }
    return false;
  }

  close(): void {
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
  }

  private command(tool: Tool, args: readonly string[]): [string, string[]] {
    return [toolPath('nsenter'), [`--net=/proc/self/fd/${CHILD_NETNS_FD}`, '--', toolPath(tool), ...args]];
  }

  private options() {
    // execa hands an integer fd to child_process as it is (verified); its types list integers only
    // for the first three slots.
    const stdio = ['pipe', 'pipe', 'pipe', this.fd] as unknown as ['pipe', 'pipe', 'pipe'];
    return { ...RUN_OPTIONS, stdio };
  }

  private toToolRun(tool: Tool, args: readonly string[], result: Result | SyncResult): ToolRun {
    const stderr = String(result.stderr ?? '');
    const nsenterFailure = /^nsenter: (.*)$/m.exec(stderr);
    if (nsenterFailure) throw new NetnsEnterError(`${this.path} cannot be entered as a network namespace: ${nsenterFailure[1]}`);
    return {
      command: `${tool} ${args.join(' ')}`,
      exitCode: result.exitCode ?? (result.timedOut ? 124 : 128),
      stdout: String(result.stdout ?? ''),
      stderr: stderr || (result.timedOut ? `timed out after ${TIMEOUT_MS} ms` : (result.message ?? '')),
    };
  }
}

/** Opens a session, runs `work`, and closes it whatever happens. */
export async function withNetns<T>(path: string, faults: Faults, work: (session: NetnsSession) => Promise<T>): Promise<T> {
  const session = NetnsSession.open(path, faults);
  try {
    return await work(session);
  } finally {
    session.close();
  }
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
    const stdio = ['pipe', 'pipe', 'pipe', fd] as unknown as ['pipe', 'pipe', 'pipe'];
    execaSync(process.execPath, ['--version'], { ...RUN_OPTIONS, stdio, input: '' });
    await execa(process.execPath, ['--version'], { ...RUN_OPTIONS, stdio, input: '', cleanup: false });
  } finally {
    closeSync(fd);
  }
}
