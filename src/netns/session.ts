/**
 * A namespace session: the pod's netns opened once, checked once, and every ip/tc run entered
 * through that open file (`nsenter --net=/proc/self/fd/3` with the fd passed down), never through
 * the path again, so the namespace checked is the namespace used. The session's runner decides how
 * children run (src/netns/runner.ts): synchronously in the plugin, asynchronously in the agent.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync, statfsSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { NO_FAULTS, type Faults } from './faults.ts';
import { startInBackground, syncToolRunner, TOOL_TIMEOUT_MS, type RawRun, type RunRequest, type ToolRunner } from './runner.ts';
import { toolPath, type Tool } from './tools.ts';
import type { NodeBatches } from './node-batches.ts';

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

/** This process does not run in the node namespace an attachment's host side was installed in. */
export class NotTheNodeError extends Error {
  constructor() {
    super("this tcqos does not run in the network namespace where the attachment's host side was installed (run it with the node's network: hostNetwork)");
  }
}

/** nsenter itself could not enter the namespace (e.g. a namespace file of another type). */
export class NetnsEnterError extends Error {}

const NSFS_MAGIC = 0x6e736673;
const NODE_NETNS = '/proc/self/ns/net';
/** The namespace's fd as the child sees it: the first slot after stdin, stdout and stderr. */
const CHILD_NETNS_FD = 3;
/** A FIFO or a tty at CNI_NETNS must not hang the plugin or become its terminal. */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

/** How a session runs its tools and which faults tests inject (none in the shipped binary). */
export interface SessionOptions {
  readonly runner?: ToolRunner;
  readonly faults?: Faults;
  /** Runs in the node's namespace batched with other sessions' (a long-running process's). */
  readonly nodeBatches?: NodeBatches;
}

/** Which network namespace a file names: its device and inode (what `ip netns identify` compares). */
export interface NetnsIdentity {
  readonly dev: number;
  readonly ino: number;
}

export function ownNetnsIdentity(): NetnsIdentity {
  const own = statSync('/proc/self/ns/net');
  return { dev: own.dev, ino: own.ino };
}

export class NetnsSession {
  readonly path: string;
  readonly faults: Faults;
  /** How this session's tools run; the locks taken around its work wait the same way. */
  readonly runner: ToolRunner;
  /** The node's own namespace: tools run in it directly, without nsenter. */
  readonly isNode: boolean;
  /** In the node's namespace, the batches shared with other sessions, if any. */
  readonly nodeBatches: NodeBatches | undefined;
  private readonly fd: number;

  private constructor(path: string, fd: number, options: SessionOptions, isNode: boolean) {
    this.path = path;
    this.fd = fd;
    this.faults = options.faults ?? NO_FAULTS;
    this.runner = options.runner ?? syncToolRunner;
    this.isNode = isNode;
    this.nodeBatches = isNode ? options.nodeBatches : undefined;
  }

  /**
   * The namespace tcqos itself runs in, where the runtime runs plugins: the node's, holding the host
   * ends of veth pods and the uplink. With `expected` (an attachment's record), it must be that one:
   * a tcqos started elsewhere (a container without host networking) never touches devices by name
   * in a namespace that is not theirs.
   */
  static node(options: SessionOptions = {}, expected?: NetnsIdentity): NetnsSession {
    const own = ownNetnsIdentity();
    if (expected && (expected.dev !== own.dev || expected.ino !== own.ino)) throw new NotTheNodeError();
    return new NetnsSession(NODE_NETNS, openSync(NODE_NETNS, OPEN_FLAGS), options, true);
  }

  /** Opens `path` and checks that it is a network namespace other than the plugin's own. */
  static open(path: string, options: SessionOptions = {}): NetnsSession {
    let fd: number;
    try {
      fd = openSync(path, OPEN_FLAGS);
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
    return new NetnsSession(path, fd, options, false);
  }

  /** Runs the tool; resolves to its output whatever the exit code. */
  async run(tool: Tool, args: readonly string[], input?: string): Promise<ToolRun> {
    return this.toToolRun(tool, args, await this.runner.run(this.request(tool, args, input ?? '')));
  }

  /** Runs the tool and throws a ToolError unless it exits 0. */
  async mustRun(tool: Tool, args: readonly string[], input?: string): Promise<ToolRun> {
    const run = await this.run(tool, args, input);
    if (run.exitCode !== 0) throw new ToolError(run);
    return run;
  }

  /**
   * Starts the tool and returns at once, for a step whose kernel work (deleting a link waits for RCU
   * grace periods) can overlap the runs that follow; work the kernel accepted finishes on its own.
   */
  start(tool: Tool, args: readonly string[]): StartedRun {
    const started = startInBackground(this.request(tool, args, ''));
    return { pid: started.pid, done: started.done.then((result) => this.toToolRun(tool, args, result)) };
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

  private request(tool: Tool, args: readonly string[], input: string): RunRequest {
    if (this.isNode) return { file: toolPath(tool), args, input, fds: [] };
    return { file: toolPath('nsenter'), args: [`--net=/proc/self/fd/${CHILD_NETNS_FD}`, '--', toolPath(tool), ...args], input, fds: [this.fd] };
  }

  private toToolRun(tool: Tool, args: readonly string[], result: RawRun): ToolRun {
    const stderr = String(result.stderr ?? '');
    const nsenterFailure = /^nsenter: (.*)$/m.exec(stderr);
    if (nsenterFailure) throw new NetnsEnterError(`${this.path} cannot be entered as a network namespace: ${nsenterFailure[1]}`);
    return {
      command: `${tool} ${args.join(' ')}`,
      exitCode: result.exitCode ?? (result.timedOut ? 124 : 128),
      stdout: String(result.stdout ?? ''),
      stderr: stderr || (result.timedOut ? `timed out after ${TOOL_TIMEOUT_MS} ms` : (result.message ?? '')),
    };
  }
}

/** Opens a session, runs `work`, and closes it whatever happens. */
export async function withNetns<T>(path: string, options: SessionOptions, work: (session: NetnsSession) => Promise<T>): Promise<T> {
  return withSession(NetnsSession.open(path, options), work);
}

/** Runs `work` with `session`, and closes it whatever happens. */
export async function withSession<T>(session: NetnsSession, work: (session: NetnsSession) => Promise<T>): Promise<T> {
  try {
    return await work(session);
  } finally {
    session.close();
  }
}
