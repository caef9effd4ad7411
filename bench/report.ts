/** Results -> the Markdown that goes into bench/RESULTS.md, with each target's verdict. */
import type { Results } from './main.ts';
import type { AccuracyResult } from './sections/accuracy.ts';
import type { LoadCell } from './sections/load.ts';
import { scrapeReport } from './sections/scrape.ts';
import { policyReport } from './sections/policy.ts';
import { uplinkReport } from './sections/uplink.ts';
import { SETUP_LABELS, type SetupId } from './lib/setups.ts';
import { median, min } from './lib/stats.ts';

/** Exact shaping of a TCP flow at MTU 1500: 1448 payload bytes per 1514-byte frame. */
export const GOODPUT_RATIO = 1448 / 1514;
const TARGET = {
  wire: [0.99, 1.01],
  goodput: [0.946, 0.966],
  classShare: 0.03,
  addOverNodeMs: 10,
  /** STATUS (containerd calls it every 5 s per plugin) may cost this much over VERSION. */
  statusOverVersionMs: 3,
  /** Per-pod wall time of N concurrent ADDs against that of 10. */
  scalePerPodRatio: 1.1,
  firstSecond: 1.1,
  /** The goal for ping p50 through a saturated 10 Mbit/s class. */
  loadedDelayAt10Mbit: 5,
} as const;

const pct = (value: number, digits = 1): string => (Number.isFinite(value) ? `${(value * 100).toFixed(digits)}%` : '–');
const ms = (value: number): string => (Number.isFinite(value) ? value.toFixed(1) : '–');
const mark = (ok: boolean): string => (ok ? '✓' : '✗');

function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

export function report(results: Results): string {
  const m = results.machine;
  const s = results.settings;
  const parts: string[] = [
    `Run ${m.date} by \`${results.command}\` (${(results.durationS / 60).toFixed(1)} min; BENCH_REPEATS=${s.repeats}, ` +
      `BENCH_SECONDS=${s.seconds}, BENCH_LOAD_SECONDS=${s.loadSeconds}, BENCH_LATENCY_RUNS=${s.latencyRuns}, BENCH_SCALE_PODS=${s.scalePods}).`,
    '',
    `Machine: ${m.nproc} CPUs (\`nproc\`), ${m.cpu}, ${m.memGiB} GiB, kernel ${m.kernel}; load average ${m.loadBefore} before, ${m.loadAfter ?? '?'} after ` +
      `(${m.otherNetns > 0 ? `${m.otherNetns} other network namespaces existed: the machine was shared` : 'no other network namespace existed'}). TCP congestion control ${s.congestionControl ?? `${m.congestionControl} (the host's default, inherited by the namespaces)`}. ` +
      `tcqos ${m.commit}, binary sha256 ${m.binary}…, Node ${m.node} inside dist/tcqos, ` +
      `reference plugin containernetworking-plugins ${m.reference} (\`/usr/lib/cni/bandwidth\`), ${m.iperf3}.`,
  ];
  const verdicts: string[] = [];
  if (results.accuracy) parts.push(accuracySection(results.accuracy, verdicts));
  if (results.classes) parts.push(classSection(results, verdicts));
  if (results.latency) parts.push(latencySection(results, verdicts));
  if (results.load) parts.push(loadSection(results, verdicts));
  if (results.scale) parts.push(scaleSection(results, verdicts));
  if (results.scrape) parts.push(scrapeReport(results.scrape, verdicts));
  if (results.policy) parts.push(policyReport(results.policy, verdicts));
  if (results.uplink) parts.push(uplinkReport(results.uplink, verdicts));
  parts.splice(3, 0, '', '### Targets', '', ...verdicts.map((v) => `- ${v}`));
  return `${parts.join('\n')}\n`;
}

function wireOk(cell: AccuracyResult['cells'][number]): boolean {
  const wire = median(cell.wire);
  return wire >= TARGET.wire[0] && wire <= TARGET.wire[1];
}

function goodputOk(cell: AccuracyResult['cells'][number]): boolean {
  const good = median(cell.goodput);
  return good >= TARGET.goodput[0] && good <= TARGET.goodput[1];
}

function accuracySection({ cells, capacity }: AccuracyResult, verdicts: string[]): string {
  const setups = [...new Set(cells.map((c) => c.setup))];
  const keys = [...new Set(cells.map((c) => `${c.rateMbit}|${c.direction}|${c.parallel}`))];
  const rows = keys.map((key) => {
    const [rate, direction, parallel] = key.split('|');
    return [
      `${rate} Mbit/s`,
      direction!,
      `-P ${parallel}`,
      ...setups.map((setup) => {
        const cell = cells.find((c) => c.setup === setup && `${c.rateMbit}|${c.direction}|${c.parallel}` === key);
        if (!cell || cell.goodput.length === 0) return cell?.errors[0] ? `error: ${cell.errors[0].slice(0, 60)}` : '–';
        return `${pct(min(cell.goodput))} / ${pct(median(cell.goodput))} ${mark(goodputOk(cell))} · ${pct(median(cell.wire))} ${mark(wireOk(cell))} · ${median(cell.retransmits).toFixed(0)}`;
      }),
    ];
  });
  for (const setup of setups) {
    const all = cells.filter((c) => c.setup === setup);
    const wires = all.filter((c) => c.wire.length).map((c) => median(c.wire));
    const wireIn = all.filter(wireOk).length;
    const goodIn = all.filter(goodputOk).length;
    verdicts.push(
      `Accuracy, ${SETUP_LABELS[setup]}: wire within ±1% in ${wireIn} of ${all.length} cells (medians ${pct(min(wires))}–${pct(Math.max(...wires))}), ` +
        `goodput within 94.6–96.6% in ${goodIn} of ${all.length}. ${mark(wireIn === all.length && goodIn === all.length)}`,
    );
  }
  return [
    '',
    '### Shaping accuracy',
    '',
    'Same rate configured in both directions (`ingressRate`/`egressRate`, bursts of 1 ms at the rate + 1514 bytes, identical for both plugins). ' +
      'TCP with iperf3, server on the receiving side; egress = pod → peer, ingress = peer → pod. Each cell: receiver goodput / configured rate, ' +
      '**min / median** over the repeats, after the first second · **wire rate** (bytes the shaping qdisc released over the same window) / configured rate, median · TCP retransmissions per run, median. ' +
      `Exact shaping shows goodput ${pct(GOODPUT_RATIO)} (1448/1514) and wire 100%; the marks: median goodput within 94.6–96.6%, median wire within ±1%.`,
    '',
    table(['rate', 'direction', 'streams', ...setups.map((s) => SETUP_LABELS[s])], rows),
    '',
    `Unshaped, the same paths carry (goodput, one run each): ${capacity
      .map((c) => `${c.path} ${c.direction} -P ${c.parallel} ${Number.isFinite(c.goodputMbit) ? (c.goodputMbit / 1000).toFixed(2) : '–'} Gbit/s`)
      .join(', ')} — the headroom above the highest shaped rate on this machine.`,
  ].join('\n');
}

function classSection(results: Results, verdicts: string[]): string {
  const cells = results.classes!;
  const rows = cells.map((c) => {
    const good = median(c.goodput) / GOODPUT_RATIO;
    const wire = median(c.wire);
    const ok = Math.abs(wire - 1) <= TARGET.classShare && Math.abs(good - 1) <= TARGET.classShare;
    return [
      SETUP_LABELS[c.setup],
      c.scenario === 'contention' ? 'seed: 50 total, db 40 + rest 10, both busy' : 'db rate 10 ceil 50, alone',
      c.direction,
      c.className,
      `${(c.expectedBits / 1e6).toFixed(0)} Mbit/s`,
      c.goodput.length ? `${pct(min(c.goodput) / GOODPUT_RATIO)} / ${pct(good)}` : `error: ${c.errors[0]?.slice(0, 60) ?? ''}`,
      pct(wire),
      mark(ok),
    ];
  });
  const bad = cells.filter((c) => !(Math.abs(median(c.wire) - 1) <= TARGET.classShare && Math.abs(median(c.goodput) / GOODPUT_RATIO - 1) <= TARGET.classShare));
  verdicts.push(`Class shares and borrowing (tcqos): ${cells.length - bad.length} of ${cells.length} within ±3% of their share. ${mark(bad.length === 0)}`);
  return [
    '',
    '### Classes under contention and ceil borrowing (tcqos only: the reference plugin has no classes)',
    '',
    'Goodput is shown as a share of exact shaping (goodput / (expected × 1448/1514)), min / median; wire = the class\'s own HTB byte counter / expected, median. Target ±3%.',
    '',
    table(['setup', 'scenario', 'direction', 'class', 'expected', 'goodput (of exact)', 'wire', 'ok'], rows),
  ].join('\n');
}

function latencySection(results: Results, verdicts: string[]): string {
  const lat = results.latency!;
  const get = (key: string) => lat.stats.find((s) => s.key === key);
  const node = get('node-e0')?.p50 ?? Number.NaN;
  const rows = lat.stats.map((s) => [s.label, ms(s.p50), ms(s.p95), ms(s.min), ms(s.max), ms(s.cpu), String(s.runs), s.failures ? `${s.failures}: ${s.firstFailure ?? ''}` : '0']);
  const tcqAdd = get('tcqos-veth:ADD');
  const refDel = get('ref-veth:DEL');
  const tcqDel = get('tcqos-veth:DEL');
  const mvAdd = get('tcqos-macvlan:ADD');
  if (tcqAdd) {
    verdicts.push(
      `ADD p50 ≤ \`node -e 0\` + ${TARGET.addOverNodeMs} ms (${ms(node + TARGET.addOverNodeMs)} ms): tcqos ${ms(tcqAdd.p50)} ms on veth, ${ms(mvAdd?.p50 ?? Number.NaN)} ms on macvlan ` +
        `(reference ${ms(get('ref-veth:ADD')?.p50 ?? Number.NaN)} ms). ${mark(tcqAdd.p50 <= node + TARGET.addOverNodeMs && (mvAdd?.p50 ?? 0) <= node + TARGET.addOverNodeMs)}`,
    );
  }
  const lateTcqos = get('late-stdin:tcqos');
  const lateRef = get('late-stdin:ref');
  const version = get('version');
  if (lateTcqos && lateRef && version) {
    const extra = lateTcqos.cpu - version.cpu;
    verdicts.push(
      `Waiting for a late stdin (200 ms) costs no CPU: tcqos ${ms(lateTcqos.cpu)} ms CPU (VERSION alone ${ms(version.cpu)}), reference ${ms(lateRef.cpu)} ms. ${mark(extra < 20)}`,
    );
  }
  const status = get('status');
  if (status && version) {
    const spawns = lat.statusSpawns;
    const over = status.p50 - version.p50;
    verdicts.push(
      `STATUS starts no process and costs ≤ VERSION + ${TARGET.statusOverVersionMs} ms: ${spawns === undefined ? 'processes not counted (strace failed)' : `${spawns} process${spawns === 1 ? '' : 'es'} started`}, ` +
        `p50 ${ms(status.p50)} ms against VERSION ${ms(version.p50)} ms (${over >= 0 ? '+' : ''}${ms(over)}). ${mark(spawns === 0 && over <= TARGET.statusOverVersionMs)}`,
    );
  }
  if (tcqDel && refDel) {
    verdicts.push(`DEL no slower than the reference: tcqos p50 ${ms(tcqDel.p50)} / p95 ${ms(tcqDel.p95)} ms, reference ${ms(refDel.p50)} / ${ms(refDel.p95)} ms. ${mark(tcqDel.p50 <= refDel.p50)}`);
  }
  const timelineRows = lat.timelines.map((t) => [t.command, ms(t.startup), ms(t.children), ms(t.between), ms(t.exit), ms(t.total), String(t.spawns), String(t.outliving ?? 0)]);
  const example = lat.timelines.find((t) => t.command === 'ADD')?.example ?? [];
  return [
    '',
    '### ADD / DEL latency',
    '',
    'Each binary invoked directly as libcni invokes it (CNI_* environment, config with prevResult on stdin) from a Node harness inside the runner namespace, ' +
      'timed from spawn to the close of its output; every candidate once per round, rounds interleaved (after 3 warm-up rounds). Shaping both directions at 100 Mbit/s. ' +
      'After each reference DEL its qdiscs left on the host veth are removed, untimed (otherwise its next ADD fails with "file exists").',
    '',
    table(['what (ms)', 'p50', 'p95', 'min', 'max', 'CPU (mean)', 'runs', 'failures'], rows),
    '',
    `hyperfine cross-check (-N, 30 runs): ${lat.hyperfine.map((h) => `${h.command} median ${ms(h.median)} ms (mean ${ms(h.mean)} ± ${ms(h.stddev)})`).join('; ') || 'not run'}.`,
    '',
    `The reference plugin on the macvlan pod: ${lat.macvlanRefusal}`,
    '',
    'Where tcqos spends an ADD/DEL (strace -f of execve and exits, median of 5 runs each; strace itself adds some milliseconds):',
    '',
    table(['command', 'start-up → first spawn', 'children running', 'Node between children', 'last child → exit', 'total', 'spawns', 'left running at exit'], timelineRows),
    '',
    `One ADD's children (ms from tcqos's execve): ${example.map((c) => `\`${c.tool}\` ${ms(c.start)}–${ms(c.end)}`).join(', ')}.`,
    ...(lat.profile
      ? [
          '',
          `JavaScript time in an ADD (V8 CPU profile via NODE_OPTIONS=--cpu-prof, mean of ${lat.profile.runs} runs, ${ms(lat.profile.totalMs)} ms profiled per run; ` +
            'inclusive ms per function, so nested entries overlap; the profiler itself slows the run a little):',
          '',
          table(['inclusive ms', 'function [module]'], lat.profile.frames.map((f) => [ms(f.ms), f.name.replace(/\|/g, '\\|')])),
        ]
      : []),
  ].join('\n');
}

function loadSection(results: Results, verdicts: string[]): string {
  const { cells, idle } = results.load!;
  const rows = cells.map((c) => [
    SETUP_LABELS[c.setup],
    c.mode === 'static' ? '1 ms (config)' : 'containerd 2^32−1 bits',
    `${c.rateMbit}`,
    c.direction,
    Number.isFinite(c.firstSecond) ? `${c.firstSecond.toFixed(2)}× ${mark(c.firstSecond <= TARGET.firstSecond)}` : `error: ${c.error?.slice(0, 60) ?? ''}`,
    pct(c.steady),
    ms(c.pingP50),
    ms(c.pingMax),
    String(c.pingLost),
    String(c.retransmits),
  ]);
  for (const id of [...new Set(cells.map((c) => c.setup))] as SetupId[]) {
    const over = cells.filter((c) => c.setup === id && !(c.firstSecond <= TARGET.firstSecond));
    const worst = Math.max(...cells.filter((c) => c.setup === id).map((c) => c.firstSecond));
    verdicts.push(`First second ≤ ${TARGET.firstSecond}× the limit, ${SETUP_LABELS[id]}: ${over.length ? `${over.length} cells over, worst ${worst.toFixed(2)}×` : `all cells, worst ${worst.toFixed(2)}×`}. ${mark(over.length === 0)}`);
  }
  for (const id of ['tcqos-macvlan', 'tcqos-veth'] as const) delayVerdict(cells, id, verdicts);
  return [
    '',
    '### Latency under load and the first second',
    '',
    `One TCP flow saturating the direction; ping (every 50 ms) from the pod to the same peer from the flow's second second on — the echo request queues in the pod's egress shaper, the reply in its ingress shaper. ` +
      `"first second" = receiver goodput in iperf3's first 1-second interval (server side) / configured rate. Idle RTT with shaping installed: ${idle.map((i) => `${SETUP_LABELS[i.setup]} ${ms(i.p50)} ms (max ${ms(i.max)})`).join(', ')}.`,
    '',
    table(['setup', 'burst', 'Mbit/s', 'loaded direction', 'first second', 'after (goodput)', 'ping p50 ms', 'ping max ms', 'pings lost', 'TCP retransmissions'], rows),
  ].join('\n');
}

/** Ping p50 under load against the reference's in the same cell (burst, rate, direction), and the 10 Mbit/s goal. */
function delayVerdict(cells: readonly LoadCell[], id: SetupId, verdicts: string[]): void {
  const pairs = cells
    .filter((c) => c.setup === id)
    .map((c) => ({
      cell: c,
      reference: cells.find((r) => r.setup === 'ref-veth' && r.mode === c.mode && r.rateMbit === c.rateMbit && r.direction === c.direction),
    }))
    .filter((p) => p.reference !== undefined && Number.isFinite(p.cell.pingP50) && Number.isFinite(p.reference.pingP50));
  if (pairs.length === 0) return;
  const excess = pairs.map((p) => p.cell.pingP50 - p.reference!.pingP50).filter((d) => d > 0);
  const at10 = pairs.filter((p) => p.cell.rateMbit === 10).map((p) => p.cell.pingP50);
  const goal = at10.length ? ` At 10 Mbit/s ${ms(Math.min(...at10))}–${ms(Math.max(...at10))} ms p50 (goal ≤ ${TARGET.loadedDelayAt10Mbit} ms ${mark(Math.max(...at10) <= TARGET.loadedDelayAt10Mbit)}).` : '';
  verdicts.push(
    `Delay under load no worse than the reference's, ${SETUP_LABELS[id]}: ${pairs.length - excess.length} of ${pairs.length} cells` +
      `${excess.length ? ` (worse by at most ${ms(Math.max(...excess))} ms)` : ''}. ${mark(excess.length === 0)}${goal}`,
  );
}

function scaleSection(results: Results, verdicts: string[]): string {
  const { cells, attachSeconds } = results.scale!;
  const rows = cells.map((c) => [
    c.plugin === 'tcqos' ? 'tcqos' : 'reference',
    String(c.pods),
    c.command,
    ms(c.wallMs),
    c.perPodRangeMs ? `${ms(c.perPodMs)} (${ms(c.perPodRangeMs[0])}–${ms(c.perPodRangeMs[1])})` : ms(c.perPodMs),
    ms(c.p50Ms),
    ms(c.maxMs),
    ms(c.cpuPerPodMs),
    c.failures ? `${c.failures}: ${c.firstFailure ?? ''}` : '0',
    c.leftovers
      ? `${c.leftovers.qdiscs} qdiscs, ${c.leftovers.ifbs} ifbs, ${c.leftovers.locks} locks${c.leftovers.records === undefined ? '' : `, ${c.leftovers.records} records`}` +
        `${c.leftovers.example ? ` (${c.leftovers.example})` : ''}`
      : '',
  ]);
  for (const plugin of ['tcqos', 'bandwidth'] as const) {
    const mine = cells.filter((c) => c.plugin === plugin);
    if (!mine.length) continue;
    const adds = mine.filter((c) => c.command === 'ADD').sort((a, b) => a.pods - b.pods);
    const small = adds[0];
    const large = adds.at(-1);
    if (small && large && large.pods > small.pods) {
      const ratio = large.perPodMs / small.perPodMs;
      const target = plugin === 'tcqos' ? ` (target ≤ ${TARGET.scalePerPodRatio}×) ${mark(ratio <= TARGET.scalePerPodRatio)}` : '';
      verdicts.push(
        `Scale, ${plugin === 'tcqos' ? 'tcqos' : 'reference'}: concurrent ADD costs ${ms(small.perPodMs)} ms wall / ${ms(small.cpuPerPodMs)} ms CPU per pod at ${small.pods} pods, ` +
          `${ms(large.perPodMs)} / ${ms(large.cpuPerPodMs)} at ${large.pods}: ${ratio.toFixed(2)}× per pod (CPU ${(large.cpuPerPodMs / small.cpuPerPodMs).toFixed(2)}×)${target}.`,
      );
    }
    const failures = mine.reduce((sum, c) => sum + c.failures, 0);
    const left = mine.reduce((sum, c) => sum + (c.leftovers ? c.leftovers.qdiscs + c.leftovers.ifbs + c.leftovers.locks + (c.leftovers.records ?? 0) : 0), 0);
    verdicts.push(`Scale, ${plugin === 'tcqos' ? 'tcqos' : 'reference'}: ${failures} failures, ${left} leftovers after DEL. ${mark(failures === 0 && left === 0)}`);
  }
  return [
    '',
    '### Scale: concurrent ADD, then concurrent DEL',
    '',
    `ptp + host-local pods attached beforehand (${attachSeconds.toFixed(1)} s, untimed); then one plugin ADDed to all of them at once, then DELed at once, ` +
      `both directions at 100 Mbit/s${(cells[0]?.batches ?? 1) > 1 ? `; each pod count ${cells[0]!.batches} times, the counts interleaved: medians (per-pod range over the batches in brackets)` : ''}. ` +
      "Leftovers are counted after each DEL in the pods and on their host veths, and tcqos's locks and registry records in the run's state dir (TCQOS_STATE_DIR), summed over the batches.",
    '',
    table(['plugin', 'pods', 'command', 'wall ms', 'wall ms / pod (range)', 'p50 ms (each)', 'max ms', 'CPU ms / pod', 'failures', 'left after DEL'], rows),
  ].join('\n');
}
