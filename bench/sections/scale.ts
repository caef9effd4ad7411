/**
 * Scale: N pods (ptp + host-local, attached beforehand) shaped by N concurrent ADDs of one plugin,
 * then N concurrent DELs, as a node bringing up or tearing down many pods at once. Wall time,
 * failures, and what each plugin leaves behind after its DEL.
 */
import { existsSync, readdirSync } from 'node:fs';
import { run } from '../../test/helpers/run.ts';
import { lockPath } from '../../src/state/lock.ts';
import { IFNAME, RUNNER, type Attachment, type Bed } from '../lib/bed.ts';
import { BINARIES, clearReferenceLeftovers, flatConfig, pluginEnv, type PluginName } from '../lib/plugins.ts';
import { median, percentile } from '../lib/stats.ts';
import type { Step } from '../lib/timed-worker.ts';
import { failuresOf, runJob } from '../lib/worker.ts';

export interface ScaleCell {
  readonly plugin: PluginName;
  readonly pods: number;
  readonly command: 'ADD' | 'DEL';
  /** Batches measured (the numbers are their medians; older results: one). */
  readonly batches?: number;
  readonly wallMs: number;
  readonly perPodMs: number;
  /** Lowest and highest wall ms per pod over the batches. */
  readonly perPodRangeMs?: readonly [number, number];
  /** Median of the individual invocations' durations. */
  readonly p50Ms: number;
  readonly maxMs: number;
  /** CPU (user + system) per pod, the plugin and the processes it started, ms. */
  readonly cpuPerPodMs: number;
  readonly failures: number;
  readonly firstFailure?: string;
  /** After DEL: qdiscs, ifbs and lock files left behind. */
  readonly leftovers?: Leftovers;
}

export interface Leftovers {
  readonly qdiscs: number;
  readonly ifbs: number;
  readonly locks: number;
  /** tcqos's registry records (one JSON file per attachment) left after DEL. */
  readonly records?: number;
  readonly example?: string;
}

export interface ScaleResult {
  readonly cells: ScaleCell[];
  readonly attachSeconds: number;
}

const ATTACH_PARALLEL = 8;

export async function scale(bed: Bed, count: number, log: (line: string) => void): Promise<ScaleResult> {
  const started = Date.now();
  const pods: Attachment[] = [];
  for (let i = 0; i < count; i += ATTACH_PARALLEL) {
    const batch = Array.from({ length: Math.min(ATTACH_PARALLEL, count - i) }, (_, j) => bed.attach('scale', `s${String(i + j).padStart(3, '0')}`));
    pods.push(...(await Promise.all(batch)));
  }
  const attachSeconds = (Date.now() - started) / 1000;
  log(`scale: ${count} ptp pods attached in ${attachSeconds.toFixed(1)} s`);

  const cells: ScaleCell[] = [];
  const sizes = [...new Set([Math.min(10, count), count])];
  for (const plugin of ['tcqos', 'bandwidth'] as const) {
    // Each size several times, sizes interleaved: one batch of 10 pods lasts ~0.3 s, and a burst of
    // background load in it alone moved the 100:10 ratio between 0.55x and 1.97x for one binary.
    const runs = new Map<string, Batch[]>();
    for (let repeat = 0; repeat < SCALE_REPEATS; repeat++) {
      for (const size of sizes) {
        const some = pods.slice(0, size);
        for (const command of ['ADD', 'DEL'] as const) {
          const batch = await runBatch(bed, plugin, command, some);
          runs.set(`${size}|${command}`, [...(runs.get(`${size}|${command}`) ?? []), batch]);
          log(
            `scale ${plugin} ${size} pods ${command} #${repeat + 1}: wall ${batch.wallMs.toFixed(0)} ms (${(batch.wallMs / size).toFixed(1)} ms/pod, CPU ${(batch.cpuMs / size).toFixed(0)} ms/pod), ` +
              `failures ${batch.failures.length}${batch.leftovers ? `, left: ${batch.leftovers.qdiscs} qdiscs ${batch.leftovers.ifbs} ifbs ${batch.leftovers.locks} locks ${batch.leftovers.records ?? 0} records` : ''}`,
          );
        }
        // The reference's DEL leaves its host-side qdiscs: clear them, untimed, so the next ADD can run.
        if (plugin === 'bandwidth') for (const pod of some) await clearReferenceLeftovers(pod);
      }
    }
    for (const size of sizes) for (const command of ['ADD', 'DEL'] as const) cells.push(cellOf(plugin, size, command, runs.get(`${size}|${command}`) ?? []));
  }
  return { cells, attachSeconds };
}

/** Batches per pod count and command; the cell reports their medians. */
const SCALE_REPEATS = 3;

interface Batch {
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly times: number[];
  readonly failures: ReturnType<typeof failuresOf>;
  readonly leftovers: Leftovers | undefined;
}

/** One plugin's `command` for every pod at once; after DEL, what it left. */
async function runBatch(bed: Bed, plugin: PluginName, command: 'ADD' | 'DEL', pods: readonly Attachment[]): Promise<Batch> {
  const steps: Step[] = pods.map((pod) => ({
    key: command,
    argv: [BINARIES[plugin]],
    env: pluginEnv(bed, command, pod),
    input: JSON.stringify(flatConfig(plugin, pod, { rateBits: 100e6, mode: 'static' })),
    timed: true,
  }));
  const report = await runJob({ mode: 'concurrent', steps });
  const leftovers = command === 'DEL' ? await leftoversOf(pods, bed.stateDir) : undefined;
  return { wallMs: report.wallMs, cpuMs: report.cpuMs, times: report.results.map((r) => r.ms), failures: failuresOf(report), leftovers };
}

/** Medians over the batches (failures and leftovers: summed). */
function cellOf(plugin: PluginName, pods: number, command: 'ADD' | 'DEL', batches: readonly Batch[]): ScaleCell {
  const wallMs = median(batches.map((b) => b.wallMs));
  const failures = batches.flatMap((b) => b.failures);
  const left = batches.map((b) => b.leftovers).filter((l): l is Leftovers => l !== undefined);
  const leftovers: Leftovers | undefined = left.length
    ? {
        qdiscs: left.reduce((sum, l) => sum + l.qdiscs, 0),
        ifbs: left.reduce((sum, l) => sum + l.ifbs, 0),
        locks: left.reduce((sum, l) => sum + l.locks, 0),
        records: left.reduce((sum, l) => sum + (l.records ?? 0), 0),
        ...(left.find((l) => l.example)?.example ? { example: left.find((l) => l.example)!.example! } : {}),
      }
    : undefined;
  return {
    plugin,
    pods,
    command,
    batches: batches.length,
    wallMs,
    perPodMs: wallMs / pods,
    perPodRangeMs: [Math.min(...batches.map((b) => b.wallMs / pods)), Math.max(...batches.map((b) => b.wallMs / pods))],
    p50Ms: median(batches.map((b) => percentile(b.times, 50))),
    maxMs: Math.max(...batches.flatMap((b) => b.times)),
    cpuPerPodMs: median(batches.map((b) => b.cpuMs)) / pods,
    failures: failures.length,
    ...(failures[0] ? { firstFailure: failures[0].output.replace(/\s+/g, ' ').slice(0, 200) } : {}),
    ...(leftovers ? { leftovers } : {}),
  };
}

/** Non-default qdiscs and ifbs on the pods (in their netns and on their host veths), tcqos's lock files and records. */
async function leftoversOf(pods: readonly Attachment[], stateDir: string): Promise<Leftovers> {
  let qdiscs = 0;
  let ifbs = 0;
  let locks = 0;
  let example: string | undefined;
  const installed = (json: string, devs?: ReadonlySet<string>): string[] =>
    (JSON.parse(json || '[]') as Array<{ dev: string; kind: string; handle: string }>)
      .filter((q) => q.handle !== '0:' && (!devs || devs.has(q.dev)))
      .map((q) => `${q.dev}:${q.kind}:${q.handle}`);
  const ifbNames = (json: string): string[] =>
    (JSON.parse(json || '[]') as Array<{ ifname: string; linkinfo?: { info_kind?: string } }>)
      .filter((l) => l.linkinfo?.info_kind === 'ifb')
      .map((l) => l.ifname);
  for (const pod of pods) {
    const [q, l] = await Promise.all([run('tc', ['-n', pod.netns, '-j', 'qdisc', 'show']), run('ip', ['-n', pod.netns, '-j', '-d', 'link', 'show'])]);
    const left = [...installed(q.stdout), ...ifbNames(l.stdout)];
    qdiscs += installed(q.stdout).length;
    ifbs += ifbNames(l.stdout).length;
    if (existsSync(lockPath(stateDir, pod.path, IFNAME))) locks++;
    if (left.length && !example) example = `${pod.netns}: ${left.join(', ')}`;
  }
  const hostVeths = new Set(pods.map((p) => p.hostVeth ?? ''));
  const [q, l] = await Promise.all([run('tc', ['-n', RUNNER, '-j', 'qdisc', 'show']), run('ip', ['-n', RUNNER, '-j', '-d', 'link', 'show'])]);
  const runnerQdiscs = installed(q.stdout, hostVeths);
  const runnerIfbs = ifbNames(l.stdout);
  qdiscs += runnerQdiscs.length;
  ifbs += runnerIfbs.length;
  if (!example && runnerQdiscs.length + runnerIfbs.length) example = `${RUNNER}: ${[...runnerQdiscs.slice(0, 2), ...runnerIfbs.slice(0, 2)].join(', ')}`;
  const records = recordsIn(stateDir, new Set(pods.map((pod) => pod.containerId)));
  return { qdiscs, ifbs, locks, records, ...(example ? { example } : {}) };
}

/** Registry records (`<ifname>@<containerId>.json`) of the given containers. */
function recordsIn(stateDir: string, containerIds: ReadonlySet<string>): number {
  try {
    return readdirSync(`${stateDir}/attachments`).filter((name) => containerIds.has(name.replace(/^[^@]*@/, '').replace(/\.json$/, ''))).length;
  } catch {
    return 0;
  }
}
