/** The machine and software a run measured, for the record next to its numbers. */
import { cpus, loadavg, release } from 'node:os';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { run } from '../../test/helpers/run.ts';
import { TCQOS_BINARY } from './bed.ts';

export interface Machine {
  readonly date: string;
  readonly nproc: number;
  readonly kernel: string;
  readonly cpu: string;
  readonly memGiB: number;
  readonly loadBefore: string;
  loadAfter?: string;
  readonly iperf3: string;
  readonly reference: string;
  readonly node: string;
  readonly commit: string;
  /** sha256 (12 hex digits) of the tcqos binary measured. */
  readonly binary: string;
  /** The TCP congestion control new namespaces get (they inherit the host's). */
  readonly congestionControl: string;
  /** Other network namespaces present: other users of the machine while the bench ran. */
  readonly otherNetns: number;
}

async function firstLine(file: string, args: string[]): Promise<string> {
  const ran = await run(file, args);
  return (ran.stdout || ran.stderr).split('\n')[0]?.trim() ?? '';
}

export async function machine(): Promise<Machine> {
  const meminfo = readFileSync('/proc/meminfo', 'utf8');
  const memKiB = Number(/MemTotal:\s+(\d+)/.exec(meminfo)?.[1] ?? 0);
  const netns = (await run('ip', ['netns', 'list'])).stdout.split('\n').filter((line) => line && !line.startsWith('tqb-'));
  const diff = (await run('git', ['diff', 'HEAD', '--', 'src', 'bin', 'scripts'])).stdout;
  const dirty = diff ? ` + uncommitted changes to src/ (diff sha256 ${createHash('sha256').update(diff).digest('hex').slice(0, 12)})` : '';
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    nproc: cpus().length,
    kernel: release(),
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    memGiB: Math.round(memKiB / 1024 / 1024),
    loadBefore: loadavg().map((l) => l.toFixed(2)).join(' '),
    iperf3: await firstLine('iperf3', ['--version']),
    reference: await firstLine('dpkg-query', ['-W', '-f', '${Version}', 'containernetworking-plugins']),
    node: process.version,
    commit: `${await firstLine('git', ['rev-parse', '--short', 'HEAD'])}${dirty}`,
    binary: createHash('sha256').update(readFileSync(TCQOS_BINARY)).digest('hex').slice(0, 12),
    otherNetns: netns.length,
    congestionControl: readFileSync('/proc/sys/net/ipv4/tcp_congestion_control', 'utf8').trim(),
  };
}
