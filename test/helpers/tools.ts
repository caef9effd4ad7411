/**
 * The attack and helper tools of kernel tests (test/tools/*.c), compiled with gcc once per source
 * version into build/test-tools/, and what tests do with them: send as an untrusted pod would (uid
 * 65534 holding only CAP_NET_RAW, inside the pod's netns, optionally from a given cgroup v2), count
 * what a receiver got, and make throwaway cgroups.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { cgroup2Root } from '../../src/bpf/cgroup.ts';
import { must, run } from './run.ts';

const SOURCES = fileURLToPath(new URL('../tools/', import.meta.url));
const OUTPUT = fileURLToPath(new URL('../../build/test-tools/', import.meta.url));
const CFLAGS = ['-O2', '-Wall', '-Wextra', '-Werror'];

export type ToolName = 'flood' | 'cgexec' | 'bpfstat';

/**
 * The tool's executable, compiled if this version of its source has not been yet. The name carries
 * the source's hash; gcc writes a private temporary file renamed into place, so two test files
 * compiling at once both end with the same complete binary.
 */
export async function tool(name: ToolName): Promise<string> {
  const source = join(SOURCES, `${name}.c`);
  const hash = createHash('sha256').update(readFileSync(source)).update(CFLAGS.join(' ')).digest('hex').slice(0, 16);
  const binary = join(OUTPUT, `${name}-${hash}`);
  if (existsSync(binary)) return binary;
  mkdirSync(OUTPUT, { recursive: true });
  const temporary = `${binary}.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    await must('gcc', [...CFLAGS, '-o', temporary, source], { timeoutMs: 60_000 });
    // Run by uid 65534 too.
    chmodSync(temporary, 0o755);
    renameSync(temporary, binary);
  } finally {
    rmSync(temporary, { force: true });
  }
  return binary;
}

/** What flood reports (its JSON line). */
export interface FloodReport {
  readonly mode: 'udp' | 'packet';
  readonly seconds: number;
  readonly packets: number;
  readonly bytes: number;
  /** Sender side: what left the socket, not what arrived. */
  readonly mbit: number;
  readonly queue_full: number;
  readonly refused: number;
  readonly priority: number | null;
  readonly bypass: boolean;
}

/** setpriv: uid/gid 65534, no groups, CAP_NET_RAW the only capability (as a pod's default set allows it). */
export const NET_RAW_ONLY = [
  'setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups',
  '--inh-caps', '-all,+net_raw', '--ambient-caps', '-all,+net_raw', '--bounding-set', '-all,+net_raw', '--',
];

export interface FloodOptions {
  /** Run as root with every capability instead of the NET_RAW-only pod user. */
  readonly privileged?: boolean;
  /** A cgroup v2 directory to send from. */
  readonly cgroup?: string;
}

/**
 * Runs flood (`args` after `--seconds S`) in `netns` and returns its report; throws with its stderr
 * when it fails. The cgroup is joined before entering the netns (`ip netns exec` remounts /sys, where
 * the cgroup2 hierarchy lives), and a cgroup is inherited across exec and fork.
 */
export async function flood(netns: string, seconds: number, args: readonly string[], options: FloodOptions = {}): Promise<FloodReport> {
  const command = [
    ...(options.cgroup ? [await tool('cgexec'), options.cgroup] : []),
    'ip', 'netns', 'exec', netns,
    ...(options.privileged ? [] : NET_RAW_ONLY),
    await tool('flood'), '--seconds', String(seconds), ...args,
  ];
  const ran = await run(command[0]!, command.slice(1), { timeoutMs: (seconds + 15) * 1000 });
  if (ran.exitCode !== 0) throw new Error(`flood ${args.join(' ')} failed (${ran.exitCode}): ${ran.stderr.trim()}`);
  return JSON.parse(ran.stdout) as FloodReport;
}

/** Bytes an interface has received or sent (frames without FCS), from `ip -s -j link`. */
export async function linkBytes(netns: string, ifname: string, way: 'rx' | 'tx'): Promise<number> {
  const shown = JSON.parse(await must('ip', ['-n', netns, '-s', '-j', 'link', 'show', 'dev', ifname])) as Array<{
    stats64: Record<'rx' | 'tx', { bytes: number }>;
  }>;
  return shown[0]!.stats64[way].bytes;
}

/** What a receiving interface got while `work` ran: bytes, and Mbit/s over the sender's own seconds. */
export async function received(netns: string, ifname: string, work: () => Promise<FloodReport>): Promise<{ bytes: number; mbit: number; sent: FloodReport }> {
  const before = await linkBytes(netns, ifname, 'rx');
  const sent = await work();
  // Let queues drain: what is still queued arrives late, and counts.
  await sleep(200);
  const bytes = (await linkBytes(netns, ifname, 'rx')) - before;
  return { bytes, mbit: (bytes * 8) / sent.seconds / 1e6, sent };
}

/** The cgroup2 mount point of this machine (/sys/fs/cgroup/unified here, /sys/fs/cgroup on cgroup2-only nodes). */
export function cgroup2MountPoint(): string {
  const root = cgroup2Root();
  if (root === undefined) throw new Error('no cgroup2 hierarchy mounted here');
  return root;
}

/** Empties a cgroup tree (kills what is left in it) and removes its directories, deepest first. */
async function removeCgroupTree(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) await removeCgroupTree(join(dir, entry.name));
  }
  for (let attempt = 0; ; attempt++) {
    try {
      rmdirSync(dir);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EBUSY' || attempt === 50) throw error;
      // A process still in it: cgroup.kill (Linux 5.14) ends it; the cgroup empties a moment later.
      writeFileSync(join(dir, 'cgroup.kill'), '1');
      await sleep(20);
    }
  }
}

/**
 * Throwaway cgroups for one test file, at the top of the cgroup2 hierarchy under names starting with
 * `<prefix>-<random>` (or its systemd-escaped `<prefix>_<random>`: kubelet's systemd layout under a
 * --cgroup-root of that name starts there); leftovers of earlier runs with the same prefix are
 * removed first, everything made is removed by `destroy`.
 */
export class TestCgroups {
  /** The cgroup2 mount point. */
  readonly mount: string;
  /** `<prefix>-<random>`: a --cgroup-root for this file's pods. */
  readonly name: string;
  private readonly tops = new Set<string>();

  private constructor(mount: string, name: string) {
    this.mount = mount;
    this.name = name;
  }

  static async create(prefix: string): Promise<TestCgroups> {
    if (!/^[a-z0-9]{2,6}$/.test(prefix)) throw new Error(`bad test prefix ${prefix}`);
    const mount = cgroup2MountPoint();
    for (const entry of readdirSync(mount)) {
      if (entry.startsWith(`${prefix}-`) || entry.startsWith(`${prefix}_`)) await removeCgroupTree(join(mount, entry));
    }
    return new TestCgroups(mount, `${prefix}-${randomBytes(4).toString('hex')}`);
  }

  /** Makes `relative` (below the mount, under this file's name) and its parents; returns its path. */
  make(relative: string): string {
    const top = relative.split('/').find((part) => part !== '')!;
    if (!top.startsWith(this.name) && !top.startsWith(this.name.replaceAll('-', '_'))) {
      throw new Error(`test cgroup ${relative} is not under ${this.name}`);
    }
    this.tops.add(top);
    const path = join(this.mount, relative);
    mkdirSync(path, { recursive: true });
    return path;
  }

  async destroy(): Promise<void> {
    for (const top of this.tops) await removeCgroupTree(join(this.mount, top));
    this.tops.clear();
  }
}
