/**
 * Scale: N pods (ptp + host-local, attached beforehand) shaped by N concurrent ADDs of one plugin,
 * then N concurrent DELs, as a node bringing up or tearing down many pods at once. Wall time,
 * failures, and what each plugin leaves behind after its DEL.
 */
import { existsSync } from 'node:fs';
import { run } from '../../test/helpers/run.ts';
import { lockPath } from '../../src/state/lock.ts';
import { TEST_STATE_DIR } from '../../test/helpers/plugin.ts';
import { IFNAME, RUNNER, type Attachment, type Bed } from '../lib/bed.ts';
import { BINARIES, clearReferenceLeftovers, flatConfig, pluginEnv, type PluginName } from '../lib/plugins.ts';
import { percentile } from '../lib/stats.ts';
import type { Step } from '../lib/timed-worker.ts';
import { failuresOf, runJob } from '../lib/worker.ts';

export interface ScaleCell {
  readonly plugin: PluginName;
  readonly pods: number;
  readonly command: 'ADD' | 'DEL';
  readonly wallMs: number;
  readonly perPodMs: number;
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
    for (const size of sizes) {
      const some = pods.slice(0, size);
      for (const command of ['ADD', 'DEL'] as const) {
        const steps: Step[] = some.map((pod) => ({
          key: command,
          argv: [BINARIES[plugin]],
          env: pluginEnv(bed, command, pod),
          input: JSON.stringify(flatConfig(plugin, pod, { rateBits: 100e6, mode: 'static' })),
          timed: true,
        }));
        const report = await runJob({ mode: 'concurrent', steps });
        const times = report.results.map((r) => r.ms);
        const failures = failuresOf(report);
        const leftovers = command === 'DEL' ? await leftoversOf(some) : undefined;
        const cell: ScaleCell = {
          plugin,
          pods: size,
          command,
          wallMs: report.wallMs,
          perPodMs: report.wallMs / size,
          p50Ms: percentile(times, 50),
          maxMs: Math.max(...times),
          cpuPerPodMs: report.cpuMs / size,
          failures: failures.length,
          ...(failures[0] ? { firstFailure: failures[0].output.replace(/\s+/g, ' ').slice(0, 200) } : {}),
          ...(leftovers ? { leftovers } : {}),
        };
        cells.push(cell);
        log(
          `scale ${plugin} ${size} pods ${command}: wall ${cell.wallMs.toFixed(0)} ms (${cell.perPodMs.toFixed(1)} ms/pod, CPU ${cell.cpuPerPodMs.toFixed(0)} ms/pod), ` +
            `failures ${cell.failures}${leftovers ? `, left: ${leftovers.qdiscs} qdiscs ${leftovers.ifbs} ifbs ${leftovers.locks} locks` : ''}`,
        );
      }
      // The reference's DEL leaves its host-side qdiscs: clear them, untimed, so the next ADD can run.
      if (plugin === 'bandwidth') for (const pod of some) await clearReferenceLeftovers(pod);
    }
  }
  return { cells, attachSeconds };
}

/** Non-default qdiscs and ifbs on the pods (in their netns and on their host veths) and tcqos lock files. */
async function leftoversOf(pods: readonly Attachment[]): Promise<Leftovers> {
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
    if (existsSync(lockPath(TEST_STATE_DIR, pod.path, IFNAME))) locks++;
    if (left.length && !example) example = `${pod.netns}: ${left.join(', ')}`;
  }
  const hostVeths = new Set(pods.map((p) => p.hostVeth ?? ''));
  const [q, l] = await Promise.all([run('tc', ['-n', RUNNER, '-j', 'qdisc', 'show']), run('ip', ['-n', RUNNER, '-j', '-d', 'link', 'show'])]);
  const runnerQdiscs = installed(q.stdout, hostVeths);
  const runnerIfbs = ifbNames(l.stdout);
  qdiscs += runnerQdiscs.length;
  ifbs += runnerIfbs.length;
  if (!example && runnerQdiscs.length + runnerIfbs.length) example = `${RUNNER}: ${[...runnerQdiscs.slice(0, 2), ...runnerIfbs.slice(0, 2)].join(', ')}`;
  return { qdiscs, ifbs, locks, ...(example ? { example } : {}) };
}
