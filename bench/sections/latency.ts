/**
 * ADD/DEL latency of each plugin invoked directly as libcni invokes it, on the same chains, in the
 * same run, interleaved (so background load hits every candidate alike), with the floors a Node
 * plugin cannot go below: spawning anything, `node -e 0` of the Node that dist/tcqos embeds, and
 * dist/tcqos answering VERSION. Then where tcqos's ADD and DEL spend their time: each tool it runs,
 * timed alone, and an strace timeline of its own runs.
 */
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { run } from '../../test/helpers/run.ts';
import { normalizeConfig } from '../../src/config/normalize.ts';
import { script, setupLines } from '../../src/plan/batch.ts';
import { planAttachment } from '../../src/plan/tree.ts';
import { IFNAME, RUNNER, TCQOS_BINARY, type Attachment, type Bed } from '../lib/bed.ts';
import { summariseProfiles, type ProfileSummary } from '../lib/cpuprofile.ts';
import { BINARIES, flatConfig, invoke, pluginEnv, type Limits, type PluginName } from '../lib/plugins.ts';
import type { Pods } from '../lib/setups.ts';
import { max, min, percentile } from '../lib/stats.ts';
import type { Step } from '../lib/timed-worker.ts';
import { NODE, failuresOf, runJob, timesOf } from '../lib/worker.ts';

export interface LatencyStat {
  readonly key: string;
  readonly label: string;
  readonly runs: number;
  readonly p50: number;
  readonly p95: number;
  readonly min: number;
  readonly max: number;
  /** Mean CPU (user + system, the process and its children) per run, ms. */
  readonly cpu: number;
  readonly failures: number;
  readonly firstFailure?: string;
}

export interface Timeline {
  readonly command: 'ADD' | 'DEL';
  readonly runs: number;
  /** Median ms from tcqos's execve to its first child's execve. */
  readonly startup: number;
  /** Median ms during which at least one child (nsenter + ip/tc) ran. */
  readonly children: number;
  /** Median ms between children (Node work and spawn overhead, between the first spawn and the last exit). */
  readonly between: number;
  /** Median ms from the last child's exit to tcqos's exit. */
  readonly exit: number;
  readonly total: number;
  readonly spawns: number;
  /** Median number of children still running when tcqos exited (left to finish on their own). */
  readonly outliving: number;
  /** The children of one run, in order: tool and args, ms from tcqos's execve to start and end. */
  readonly example: ReadonlyArray<{ tool: string; start: number; end: number }>;
}

export interface LatencyResult {
  readonly stats: LatencyStat[];
  readonly hyperfine: Array<{ command: string; median: number; mean: number; stddev: number }>;
  readonly timelines: Timeline[];
  /** V8 CPU profiles of tcqos ADD (NODE_OPTIONS=--cpu-prof): inclusive ms per function. */
  readonly profile: ProfileSummary | undefined;
  /** Processes one tcqos STATUS started (strace -f, execve after its own); undefined when strace failed. */
  readonly statusSpawns?: number | undefined;
  readonly macvlanRefusal: string;
}

interface Chain {
  readonly key: string;
  readonly label: string;
  readonly plugin: PluginName;
  readonly pod: Attachment;
  readonly limits: Limits;
}

const WARMUP = 3;
const STRACE_RUNS = 5;

export async function latency(bed: Bed, pods: Pods, runs: number, log: (line: string) => void): Promise<LatencyResult> {
  const vpod = pods.setups.find((s) => s.id === 'tcqos-veth')!.pod;
  const mpod = pods.macvlanPod;
  const normal: Limits = { rateBits: 100e6, mode: 'static' };
  const containerd: Limits = { rateBits: 100e6, mode: 'containerd' };
  const chains: Chain[] = [
    { key: 'tcqos-veth', label: 'tcqos, veth (ptp)', plugin: 'tcqos', pod: vpod, limits: normal },
    { key: 'ref-veth', label: 'reference, veth (ptp)', plugin: 'bandwidth', pod: vpod, limits: normal },
    { key: 'tcqos-macvlan', label: 'tcqos, macvlan', plugin: 'tcqos', pod: mpod, limits: normal },
    { key: 'tcqos-veth-runtime', label: 'tcqos, veth, containerd runtimeConfig burst', plugin: 'tcqos', pod: vpod, limits: containerd },
    { key: 'ref-veth-runtime', label: 'reference, veth, containerd runtimeConfig burst', plugin: 'bandwidth', pod: vpod, limits: containerd },
  ];

  const refusal = await invoke(bed, 'bandwidth', 'ADD', mpod, flatConfig('bandwidth', mpod, normal));
  const macvlanRefusal = `exit ${refusal.exitCode}: ${refusal.stdout.replace(/\s+/g, ' ').trim()}`;

  const tools = await toolSteps(vpod);
  const steps: Step[] = [];
  for (let i = 0; i < WARMUP + runs; i++) {
    const timed = i >= WARMUP;
    steps.push(...floorSteps(timed), ...noopSteps(bed, vpod, timed));
    if (i % 4 === 0) steps.push(...lateStdinSteps(timed));
    for (const chain of chains) steps.push(...chainSteps(bed, chain, timed));
    steps.push(...tools.map((step) => ({ ...step, timed })));
  }
  const report = await runJob({ mode: 'sequence', steps });
  const labels: Record<string, string> = {
    true: 'spawn floor (/bin/true)',
    'node-e0': '`node -e 0` (Node 24, as embedded)',
    version: 'dist/tcqos VERSION (start-up)',
    'tcqos-noop:ADD': 'tcqos ADD with no limits configured (start-up + config, no process started)',
    'late-stdin:tcqos': `tcqos VERSION, stdin written ${LATE_STDIN_MS} ms late (CPU: waiting or spinning?)`,
    'late-stdin:ref': `reference VERSION, stdin written ${LATE_STDIN_MS} ms late`,
    status: 'dist/tcqos STATUS (CNI 1.1: the tools are installed; no process started)',
    ...Object.fromEntries(chains.flatMap((c) => [[`${c.key}:ADD`, `${c.label}: ADD`], [`${c.key}:DEL`, `${c.label}: DEL`]])),
    'tool:link-show': 'nsenter + `ip -j -d link show`',
    'tool:qdisc-show': 'nsenter + `tc -j qdisc show`',
    'tool:ip-batch': 'nsenter + `ip -batch` (ifb)',
    'tool:tc-batch-add': 'nsenter + `tc -batch` (ADD script)',
    'tool:tc-batch-del': 'nsenter + `tc -batch` (DEL script)',
    'tool:ip-link-del': 'nsenter + `ip link del` (ifb)',
  };
  const stats = Object.entries(labels).map(([key, label]) => {
    const times = timesOf(report, key);
    const failures = failuresOf(report, key);
    const cpu = report.results.filter((r) => r.timed && r.key === key).map((r) => r.cpuMs ?? Number.NaN);
    return {
      key,
      label,
      runs: times.length,
      p50: percentile(times, 50),
      p95: percentile(times, 95),
      min: min(times),
      max: max(times),
      cpu: cpu.reduce((a, b) => a + b, 0) / cpu.length,
      failures: failures.length,
      ...(failures[0] ? { firstFailure: failures[0].output.replace(/\s+/g, ' ').slice(0, 200) } : {}),
    };
  });
  const untimedFailures = report.results.filter((r) => !r.timed && r.exitCode !== 0 && !r.key.startsWith('reset'));
  for (const stat of stats) log(`latency ${stat.key}: p50 ${stat.p50.toFixed(1)} ms p95 ${stat.p95.toFixed(1)} ms (${stat.runs} runs, ${stat.failures} failed)`);
  if (untimedFailures.length) log(`latency: ${untimedFailures.length} warm-up steps failed, first: ${untimedFailures[0]!.key} ${untimedFailures[0]!.output}`);

  const hyperfine = await hyperfineFloors(bed);
  const timelines = await straceTimelines(bed, chains[0]!);
  const profile = await cpuProfiles(bed, chains[0]!);
  const statusSpawns = await spawnsOfStatus(bed);
  for (const t of timelines) log(`latency strace ${t.command}: startup ${t.startup.toFixed(1)} children ${t.children.toFixed(1)} between ${t.between.toFixed(1)} exit ${t.exit.toFixed(1)} total ${t.total.toFixed(1)} ms`);
  return { stats, hyperfine, timelines, profile, macvlanRefusal, statusSpawns };
}

function floorSteps(timed: boolean): Step[] {
  return [
    { key: 'true', argv: ['/bin/true'], env: {}, timed },
    { key: 'node-e0', argv: [NODE, '-e', '0'], env: {}, timed },
    { key: 'version', argv: [TCQOS_BINARY], env: { CNI_COMMAND: 'VERSION' }, timed },
    { key: 'status', argv: [TCQOS_BINARY], env: STATUS_ENV, input: STATUS_CONFIG, timed },
  ];
}

/**
 * STATUS as containerd ≥ 2.0.1 calls it (every 5 s per plugin, for the kubelet's CRI status poll):
 * CNI 1.1.0 config on stdin, no attachment variables, a PATH that holds the tools.
 */
const STATUS_ENV = { CNI_COMMAND: 'STATUS', CNI_PATH: '/usr/lib/cni', PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
const STATUS_CONFIG = JSON.stringify({ cniVersion: '1.1.0', name: 'tqbptp', type: 'tcqos' });

/** Processes one STATUS starts: strace -f of its execve calls, minus tcqos's own. */
async function spawnsOfStatus(bed: Bed): Promise<number | undefined> {
  const file = `${bed.work}/strace-STATUS.txt`;
  const step: Step = {
    key: 'strace:STATUS',
    argv: ['/usr/bin/strace', '-f', '--seccomp-bpf', '-e', 'trace=execve', '-o', file, TCQOS_BINARY],
    env: STATUS_ENV,
    input: STATUS_CONFIG,
    timed: true,
  };
  const report = await runJob({ mode: 'sequence', steps: [step] });
  if (report.results[0]?.exitCode !== 0) return undefined;
  const execs = readFileSync(file, 'utf8').split('\n').filter((line) => /^\d+\s+execve\(/.test(line)).length;
  return Math.max(0, execs - 1);
}

/**
 * VERSION with its stdin arriving 200 ms late (a runtime busy starting many pods writes it late):
 * CPU shows whether the plugin waits for stdin or spins on it.
 */
const LATE_STDIN_MS = 200;
function lateStdinSteps(timed: boolean): Step[] {
  const late = (key: string, binary: string): Step => ({
    key,
    argv: ['/bin/sh', '-c', `(sleep ${LATE_STDIN_MS / 1000}; echo '{"cniVersion":"1.0.0"}') | exec "$0"`, binary],
    env: { CNI_COMMAND: 'VERSION', PATH: '/usr/bin:/bin' },
    timed,
  });
  return [late('late-stdin:tcqos', TCQOS_BINARY), late('late-stdin:ref', BINARIES.bandwidth)];
}

/** ADD of a config with no limits: start-up, stdin, validation, the result on stdout; no process, no lock. */
function noopSteps(bed: Bed, pod: Attachment, timed: boolean): Step[] {
  const config = { cniVersion: '1.0.0', name: `tqb${pod.network}`, type: 'tcqos', prevResult: pod.prevResult };
  return [{ key: 'tcqos-noop:ADD', argv: [TCQOS_BINARY], env: pluginEnv(bed, 'ADD', pod), input: JSON.stringify(config), timed }];
}

function chainSteps(bed: Bed, chain: Chain, timed: boolean): Step[] {
  const input = JSON.stringify(flatConfig(chain.plugin, chain.pod, chain.limits));
  const call = (command: 'ADD' | 'DEL'): Step => ({
    key: `${chain.key}:${command}`,
    argv: [BINARIES[chain.plugin]],
    env: pluginEnv(bed, command, chain.pod),
    input,
    timed,
  });
  const steps = [call('ADD'), call('DEL')];
  // The reference's DEL leaves its qdiscs on the host veth; the next ADD would fail with "file exists".
  if (chain.plugin === 'bandwidth' && chain.pod.hostVeth) steps.push(...resetReference(chain.pod.hostVeth));
  return steps;
}

function resetReference(hostVeth: string): Step[] {
  return ['root', 'ingress'].map((parent) => ({ key: 'reset', argv: ['/usr/sbin/tc', 'qdisc', 'del', 'dev', hostVeth, parent], env: {}, timed: false }));
}

/**
 * The kinds of process tcqos starts, each timed alone (nsenter into the pod, then the tool): reading
 * links and qdiscs, creating the ifb, installing the planned tc script (tcqos's own planner), and
 * removing both. A cycle: the pod is clean before and after.
 */
async function toolSteps(pod: Attachment): Promise<Step[]> {
  const { policy } = await normalizeConfig(flatConfig('tcqos', pod, { rateBits: 100e6, mode: 'static' }));
  const plan = planAttachment(policy, IFNAME, 1500);
  const nsenter = (key: string, args: string[], input?: string): Step => ({
    key,
    argv: ['/usr/bin/nsenter', `--net=${pod.path}`, '--', ...args],
    env: {},
    timed: true,
    ...(input === undefined ? {} : { input }),
  });
  const ifb = `link add name ${plan.ifb} mtu 1500 txqueuelen 1000 type ifb\nlink set dev ${plan.ifb} up\n`;
  return [
    nsenter('tool:link-show', ['/usr/sbin/ip', '-j', '-d', 'link', 'show']),
    nsenter('tool:qdisc-show', ['/usr/sbin/tc', '-j', 'qdisc', 'show']),
    nsenter('tool:ip-batch', ['/usr/sbin/ip', '-batch', '-'], ifb),
    nsenter('tool:tc-batch-add', ['/usr/sbin/tc', '-batch', '-'], script(setupLines(plan))),
    nsenter('tool:tc-batch-del', ['/usr/sbin/tc', '-batch', '-'], `qdisc del dev ${IFNAME} root\nqdisc del dev ${IFNAME} ingress\n`),
    nsenter('tool:ip-link-del', ['/usr/sbin/ip', 'link', 'del', 'dev', plan.ifb]),
  ];
}

/** hyperfine's view of the two floors, as a cross-check of the harness's own timing. */
async function hyperfineFloors(bed: Bed): Promise<LatencyResult['hyperfine']> {
  const file = `${bed.work}/hyperfine.json`;
  const ran = await run(
    'ip',
    ['netns', 'exec', RUNNER, 'env', 'CNI_COMMAND=VERSION', 'hyperfine', '-N', '--style', 'none', '-w', '3', '-r', '30', '--export-json', file,
      '-n', 'node -e 0', `${NODE} -e 0`, '-n', 'dist/tcqos VERSION', TCQOS_BINARY],
    { timeoutMs: 120_000 },
  );
  if (ran.exitCode !== 0) return [];
  const json = JSON.parse(readFileSync(file, 'utf8')) as { results: Array<{ command: string; median: number; mean: number; stddev: number }> };
  return json.results.map((r) => ({ command: r.command, median: r.median * 1000, mean: r.mean * 1000, stddev: r.stddev * 1000 }));
}

/** strace -f timelines of tcqos ADD and DEL (execve and exits only; strace slows each run a little). */
async function straceTimelines(bed: Bed, chain: Chain): Promise<Timeline[]> {
  const input = JSON.stringify(flatConfig(chain.plugin, chain.pod, chain.limits));
  const steps: Step[] = [];
  const files: Record<'ADD' | 'DEL', string[]> = { ADD: [], DEL: [] };
  for (let i = 0; i < STRACE_RUNS; i++) {
    for (const command of ['ADD', 'DEL'] as const) {
      const file = `${bed.work}/strace-${command}-${i}.txt`;
      files[command].push(file);
      steps.push({
        key: `strace:${command}`,
        argv: ['/usr/bin/strace', '-f', '-ttt', '--seccomp-bpf', '-e', 'trace=execve,exit_group', '-o', file, TCQOS_BINARY],
        env: pluginEnv(bed, command, chain.pod),
        input,
        timed: true,
      });
    }
  }
  await runJob({ mode: 'sequence', steps });
  return (['ADD', 'DEL'] as const).map((command) => summariseTimelines(command, files[command].map((f) => parseStrace(readFileSync(f, 'utf8')))));
}

/** CPU profiles of tcqos ADD (each followed by an unprofiled DEL), summarised per function. */
async function cpuProfiles(bed: Bed, chain: Chain): Promise<ProfileSummary | undefined> {
  const dir = `${bed.work}/cpuprof`;
  mkdirSync(dir, { recursive: true });
  const input = JSON.stringify(flatConfig(chain.plugin, chain.pod, chain.limits));
  const steps: Step[] = [];
  for (let i = 0; i < STRACE_RUNS; i++) {
    steps.push(
      { key: 'prof:ADD', argv: [TCQOS_BINARY], env: { ...pluginEnv(bed, 'ADD', chain.pod), NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${dir} --cpu-prof-interval=100` }, input, timed: true },
      { key: 'prof:DEL', argv: [TCQOS_BINARY], env: pluginEnv(bed, 'DEL', chain.pod), input, timed: false },
    );
  }
  await runJob({ mode: 'sequence', steps });
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => `${dir}/${f}`);
  return files.length ? summariseProfiles(files, process.env['BENCH_BUNDLE'] ?? '') : undefined;
}

interface ChildSpan {
  readonly tool: string;
  readonly start: number;
  readonly end: number;
}

interface ParsedRun {
  readonly total: number;
  readonly children: ChildSpan[];
}

/**
 * One strace -f -ttt log: the first execve is tcqos; every later process's first execve starts a
 * child (nsenter, named by the tool it runs; or a tool run directly, in the node's namespace).
 */
export function parseStrace(text: string): ParsedRun {
  let root: number | undefined;
  let t0 = 0;
  let total = 0;
  const children = new Map<number, { tool: string; start: number; end: number }>();
  for (const line of text.split('\n')) {
    const found = /^(\d+)\s+(\d+\.\d+)\s+(.*)$/.exec(line);
    if (!found) continue;
    const pid = Number(found[1]);
    const at = Number(found[2]) * 1000;
    const rest = found[3]!;
    if (rest.startsWith('execve(')) {
      if (root === undefined) {
        root = pid;
        t0 = at;
      } else if (pid !== root && !children.has(pid)) {
        // execve("file", ["argv0", "arg", ...], ...): what runs is the file, or nsenter's command after "--"
        const [file = '', , ...args] = [...rest.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
        const [tool = '', ...toolArgs] = file.endsWith('/nsenter') ? args.slice(args.indexOf('--') + 1) : [file, ...args];
        children.set(pid, { tool: [tool.replace(/^.*\//, ''), ...toolArgs].join(' '), start: at - t0, end: Number.NaN });
      }
    } else if (rest.startsWith('+++ exited')) {
      const child = children.get(pid);
      if (child) child.end = at - t0;
      if (pid === root) total = at - t0;
    }
  }
  return { total, children: [...children.values()].sort((a, b) => a.start - b.start) };
}

/**
 * Medians over the runs. A child still running when tcqos exited counts up to tcqos's exit: what the
 * runtime waits for ends there.
 */
function summariseTimelines(command: 'ADD' | 'DEL', traced: ParsedRun[]): Timeline {
  const parsed = traced.map((run) => ({ ...run, children: run.children.map((c) => ({ ...c, end: Math.min(c.end, run.total) })) }));
  const pick = (f: (run: ParsedRun) => number) => percentile(parsed.map(f), 50);
  const busy = (run: ParsedRun): number => {
    let sum = 0;
    let until = 0;
    for (const child of run.children) {
      const start = Math.max(child.start, until);
      if (child.end > start) sum += child.end - start;
      until = Math.max(until, child.end);
    }
    return sum;
  };
  const first = (run: ParsedRun) => run.children[0]?.start ?? run.total;
  const last = (run: ParsedRun) => Math.max(first(run), ...run.children.map((c) => c.end));
  return {
    command,
    runs: parsed.length,
    startup: pick(first),
    children: pick(busy),
    between: pick((run) => last(run) - first(run) - busy(run)),
    exit: pick((run) => run.total - last(run)),
    total: pick((run) => run.total),
    spawns: pick((run) => run.children.length),
    outliving: percentile(traced.map((run) => run.children.filter((c) => !(c.end <= run.total)).length), 50),
    example: (traced[Math.floor(traced.length / 2)]?.children ?? []).map((c) => ({ tool: c.tool, start: c.start, end: c.end })),
  };
}
