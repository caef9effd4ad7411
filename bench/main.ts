/**
 * `make bench` (through bench/run.sh): tcqos side by side with the reference bandwidth plugin —
 * shaping accuracy, classes, ADD/DEL latency, latency under load and first-second overshoot,
 * scale. Everything in one run, on one machine; results to bench/RESULTS.md (between its markers)
 * and bench/results/last-run.json.
 *
 * Knobs (environment): BENCH_REPEATS (3), BENCH_SECONDS (4, per accuracy/class flow),
 * BENCH_LOAD_SECONDS (5), BENCH_LATENCY_RUNS (40), BENCH_SCALE_PODS (100), BENCH_RATES (1,10,100,1000,10000),
 * BENCH_SCRAPE_SIZES (10,100,250: attachments under the node agent),
 * BENCH_POLICY_PODS (100: pods selected by one BandwidthPolicy),
 * BENCH_SECTIONS (latency,accuracy,classes,load,scale,scrape,policy,uplink), BENCH_CC (TCP congestion control of the
 * iperf3 senders, e.g. cubic; default: the host's). RESULTS.md is rewritten only by a run of every
 * section; a partial run writes bench/results/partial.md.
 */
import { Bed, RUNNER } from './lib/bed.ts';
import { nowMs } from './lib/flow.ts';
import { attachPods } from './lib/setups.ts';
import { machine, type Machine } from './lib/machine.ts';
import { accuracy, type AccuracyResult } from './sections/accuracy.ts';
import { classes, type ClassCell } from './sections/classes.ts';
import { latency, type LatencyResult } from './sections/latency.ts';
import { load, type LoadResult } from './sections/load.ts';
import { scale, type ScaleResult } from './sections/scale.ts';
import { scrape, type ScrapeResult } from './sections/scrape.ts';
import { policy, type PolicyResult } from './sections/policy.ts';
import { uplink, type UplinkResult } from './sections/uplink.ts';
import { report } from './report.ts';
import { writeResults } from './lib/results-file.ts';

const SECTIONS = ['latency', 'accuracy', 'classes', 'load', 'scale', 'scrape', 'policy', 'uplink'] as const;
type Section = (typeof SECTIONS)[number];

export interface Settings {
  readonly repeats: number;
  readonly seconds: number;
  readonly loadSeconds: number;
  readonly latencyRuns: number;
  readonly scalePods: number;
  /** Attachment counts the node agent is measured at. */
  readonly scrapeSizes: readonly number[];
  /** Pods selected by one BandwidthPolicy. */
  readonly policyPods: number;
  readonly ratesMbit: readonly number[];
  readonly sections: readonly Section[];
  /** BENCH_CC: TCP congestion control of the iperf3 senders (iperf3 -C; default: the host's). */
  readonly congestionControl: string | undefined;
}

export interface Results {
  readonly settings: Settings;
  readonly machine: Machine;
  readonly command: string;
  readonly durationS: number;
  readonly latency?: LatencyResult;
  readonly accuracy?: AccuracyResult;
  readonly classes?: ClassCell[];
  readonly load?: LoadResult;
  readonly scale?: ScaleResult;
  readonly scrape?: ScrapeResult;
  readonly policy?: PolicyResult;
  readonly uplink?: UplinkResult;
}

function numberEnv(name: string, fallback: number): number {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`${name}=${value}: expected a positive number`);
  return parsed;
}

function settingsFromEnv(): Settings {
  const sections = (process.env['BENCH_SECTIONS'] || SECTIONS.join(',')).split(',').map((s) => s.trim());
  for (const section of sections) if (!SECTIONS.includes(section as Section)) throw new Error(`BENCH_SECTIONS: unknown section ${section}`);
  return {
    repeats: Math.round(numberEnv('BENCH_REPEATS', 3)),
    seconds: numberEnv('BENCH_SECONDS', 4),
    loadSeconds: numberEnv('BENCH_LOAD_SECONDS', 5),
    latencyRuns: Math.round(numberEnv('BENCH_LATENCY_RUNS', 40)),
    scalePods: Math.round(numberEnv('BENCH_SCALE_PODS', 100)),
    scrapeSizes: (process.env['BENCH_SCRAPE_SIZES'] || '10,100,250').split(',').map(Number),
    policyPods: Math.round(numberEnv('BENCH_POLICY_PODS', 100)),
    ratesMbit: (process.env['BENCH_RATES'] || '1,10,100,1000,10000').split(',').map(Number),
    sections: sections as Section[],
    congestionControl: process.env['BENCH_CC'] || undefined,
  };
}

async function main(): Promise<void> {
  const [work, cnidriver] = process.argv.slice(2);
  if (!work || !cnidriver) throw new Error('usage: main.ts WORK_DIR CNIDRIVER');
  const settings = settingsFromEnv();
  const started = nowMs();
  const log = (line: string): void => console.log(`[${((nowMs() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`);
  const machineBefore = await machine();
  log(`bench: ${JSON.stringify(settings)}`);

  await Bed.removeLeftovers();
  const bed = new Bed(work, cnidriver);
  const results: { -readonly [K in keyof Results]?: Results[K] } = {};
  try {
    await bed.runner();
    const pods = await attachPods(bed);
    const want = (section: Section) => settings.sections.includes(section);
    if (want('latency')) results.latency = await latency(bed, pods, settings.latencyRuns, log);
    if (want('accuracy')) results.accuracy = await accuracy(bed, pods.setups, { ratesMbit: settings.ratesMbit, parallels: [1, 4], repeats: settings.repeats, seconds: settings.seconds }, log);
    if (want('classes')) results.classes = await classes(bed, pods.setups, { repeats: settings.repeats, seconds: settings.seconds }, log);
    if (want('load')) results.load = await load(bed, pods, { seconds: settings.loadSeconds }, log);
    if (want('scale')) results.scale = await scale(bed, settings.scalePods, log);
    if (want('scrape')) results.scrape = await scrape(bed, settings.scrapeSizes, log);
    if (want('policy')) results.policy = await policy(bed, RUNNER, settings.policyPods, log);
    if (want('uplink')) results.uplink = await uplink(settings.repeats, log);
  } finally {
    await bed.destroy();
  }
  const final: Results = {
    ...results,
    settings,
    machine: { ...machineBefore, loadAfter: (await machine()).loadBefore },
    command: process.env['BENCH_COMMAND'] || 'make bench',
    durationS: (nowMs() - started) / 1000,
  };
  const markdown = report(final);
  console.log(`\n${markdown}`);
  log(`written: ${writeResults(final, markdown, settings.sections.length === SECTIONS.length)}`);
}

await main();
