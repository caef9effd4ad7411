/**
 * Soak: many ADD/DEL cycles over a few macvlan pods with faults injected at random - the plugin's
 * own kill points (TCQOS_FAULT=kill:after-read|after-ifb|after-tc), SIGKILL at a random moment of
 * ADD or DEL, a tc batch line that fails (fail-line:N), ADD and DEL racing on one attachment, and
 * ADD straight after a killed ADD (adoption) - then DEL of everything and a count of what leaked.
 *
 * Run: `bash bench/soak.sh` (make soak), knobs SOAK_CYCLES (1000), SOAK_PODS (4), SOAK_SEED.
 * test/integration/robustness.test.ts runs a short version through runSoak().
 *
 * Safety: every namespace is the soak's own (Testbed prefix, removed first and at the end), the
 * plugin runs inside a runner namespace, and no host interface is touched.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { lockPath } from '../src/state/lock.ts';
import { pluginCommand, TEST_STATE_DIR, prevResultFor } from '../test/helpers/plugin.ts';
import { run } from '../test/helpers/run.ts';
import { Testbed, type Pod } from '../test/helpers/testbed.ts';

// ---------------------------------------------------------------------------------------------
// Running the plugin with an optional SIGKILL at a chosen moment.

export interface PluginCall {
  readonly command: 'ADD' | 'DEL' | 'CHECK' | 'GC';
  readonly config: object | string;
  readonly netns: string;
  readonly ifname: string;
  readonly containerId?: string;
  readonly extraEnv?: Record<string, string>;
}

export interface PluginRun {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The SIGKILL this run was given by killAfterMs landed before the process ended. */
  readonly killedByTimer: boolean;
  readonly json: Record<string, unknown> | undefined;
}

/**
 * `ip netns exec RUNNER env -i ... dist/tcqos`, as test/helpers/plugin.ts's invoke() does (both
 * exec, so the pid is the plugin's), with stdin written and SIGKILL sent after killAfterMs.
 */
export function runPlugin(runner: string, call: PluginCall, killAfterMs?: number): Promise<PluginRun> {
  const env: Record<string, string> = {
    CNI_COMMAND: call.command,
    // invoke()'s default too: a kill by one and a DEL by the other concern the same attachment
    CNI_CONTAINERID: call.containerId ?? 'tcqos-test',
    CNI_NETNS: call.netns,
    CNI_IFNAME: call.ifname,
    CNI_PATH: '/opt/cni/bin',
    TCQOS_STATE_DIR: TEST_STATE_DIR,
    ...call.extraEnv,
  };
  const input = typeof call.config === 'string' ? call.config : JSON.stringify(call.config);
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', runner, 'env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...pluginCommand(env)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let killedByTimer = false;
    let ended = false;
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdin.on('error', () => undefined); // EPIPE when killed before reading
    child.stdin.end(input);
    const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const timer =
      killAfterMs === undefined
        ? undefined
        : setTimeout(() => {
            if (!ended) killedByTimer = child.kill('SIGKILL');
          }, killAfterMs);
    child.on('error', reject);
    child.on('close', (exitCode, signal) => {
      ended = true;
      clearTimeout(guard);
      if (timer) clearTimeout(timer);
      const text = stdout.trim();
      let json: Record<string, unknown> | undefined;
      try {
        json = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ exitCode, signal, stdout, stderr, killedByTimer: killedByTimer && signal === 'SIGKILL', json });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// What tcqos could leave behind.

export interface Leftovers {
  /** ifb devices (any, the tcq* ones are tcqos's) in the pods' namespaces */
  readonly ifbs: string[];
  /** qdiscs with a handle other than the kernel default 0: */
  readonly qdiscs: string[];
  /** tc filters on any device, root or ingress */
  readonly filters: string[];
  /** tcqos, nsenter, ip or tc processes still working on the soak's namespaces */
  readonly processes: string[];
  /** lock files and registry records of the soak's attachments, and temp files in the state dir */
  readonly lockFiles: string[];
}

async function json<T>(args: readonly string[]): Promise<T> {
  const ran = await run('ip', args);
  if (ran.exitCode !== 0) throw new Error(`ip ${args.join(' ')}: ${ran.stderr}`);
  return (ran.stdout.trim() ? JSON.parse(ran.stdout) : []) as T;
}

/**
 * Every tcqos-related thing in one pod namespace (empty arrays when clean). Filters hang only off
 * qdiscs with a handle (a classful root, ingress or clsact), so only those devices are asked.
 */
export async function podLeftovers(netns: string): Promise<Pick<Leftovers, 'ifbs' | 'qdiscs' | 'filters'>> {
  const [links, qdiscs] = await Promise.all([
    json<Array<{ ifname: string; linkinfo?: { info_kind?: string } }>>(['-n', netns, '-d', '-j', 'link', 'show']),
    json<Array<{ dev: string; kind: string; handle: string; parent?: string }>>(['netns', 'exec', netns, 'tc', '-j', 'qdisc', 'show']),
  ]);
  const installed = qdiscs.filter((q) => q.handle !== '0:');
  const filters: string[] = [];
  for (const q of installed) {
    const ingress = q.parent === 'ffff:fff1';
    const shown = await run('ip', ['netns', 'exec', netns, 'tc', '-j', 'filter', 'show', 'dev', q.dev, ...(ingress ? ['ingress'] : [])]);
    if (shown.exitCode !== 0 || !shown.stdout.trim()) continue;
    const entries = JSON.parse(shown.stdout) as Array<{ pref?: number; kind?: string }>;
    for (const entry of entries) filters.push(`${netns}:${q.dev}${ingress ? ':ingress' : ''}:${entry.kind ?? '?'}:${entry.pref ?? '?'}`);
  }
  return {
    ifbs: links.filter((l) => l.linkinfo?.info_kind === 'ifb' || l.ifname.startsWith('tcq')).map((l) => `${netns}:${l.ifname}`),
    qdiscs: installed.map((q) => `${netns}:${q.dev}:${q.kind}:${q.handle}`),
    filters: [...new Set(filters)],
  };
}

/** Processes whose command line or environment names one of the soak's namespaces. */
export function strayProcesses(prefix: string): string[] {
  const marker = `/var/run/netns/${prefix}-`;
  const found: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
      const runnerExec = cmdline.startsWith(`ip netns exec ${prefix}-`);
      if (cmdline.includes(marker) || environ.includes(`CNI_NETNS=${marker}`) || runnerExec) found.push(`${pid} ${cmdline.slice(0, 160)}`);
    } catch {
      // gone meanwhile, or a kernel thread
    }
  }
  return found;
}

/**
 * Lock files of the given attachments, plus anything in the state dir that is neither a directory,
 * a lock nor a registry record (a temp file a killed writer left, say).
 */
export function strayLockFiles(attachments: ReadonlyArray<{ path: string; ifname: string }>): string[] {
  const ours = attachments.map((a) => lockPath(TEST_STATE_DIR, a.path, a.ifname)).filter((path) => existsSync(path));
  const others: string[] = [];
  const walk = (dir: string): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      if (entry.isDirectory()) walk(`${dir}/${entry.name}`);
      else if (!entry.name.endsWith('.lock') && !(dir.endsWith('/attachments') && entry.name.endsWith('.json'))) others.push(`${dir}/${entry.name}`);
    }
  };
  walk(TEST_STATE_DIR);
  return [...ours, ...others];
}

/** Registry records of attachments in the given namespaces: a DEL'd or never-shaped pod has none. */
export function strayRecords(pods: ReadonlyArray<{ path: string; ifname: string }>): string[] {
  const dir = `${TEST_STATE_DIR}/attachments`;
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => name.endsWith('.json'));
  } catch {
    return [];
  }
  return names.filter((name) => {
    try {
      const record = JSON.parse(readFileSync(`${dir}/${name}`, 'utf8')) as { netns?: string; ifname?: string };
      return pods.some((pod) => pod.path === record.netns && pod.ifname === record.ifname);
    } catch {
      return true;
    }
  }).map((name) => `${dir}/${name}`);
}

/** Waits (bounded) for stray processes to end, then counts everything left. */
export async function leftovers(prefix: string, pods: readonly Pod[]): Promise<Leftovers> {
  for (let i = 0; i < 50 && strayProcesses(prefix).length; i++) await new Promise((r) => setTimeout(r, 100));
  const perPod = await Promise.all(pods.map((pod) => podLeftovers(pod.netns)));
  return {
    ifbs: perPod.flatMap((p) => p.ifbs),
    qdiscs: perPod.flatMap((p) => p.qdiscs),
    filters: perPod.flatMap((p) => p.filters),
    processes: strayProcesses(prefix),
    lockFiles: [...strayLockFiles(pods.map((pod) => ({ path: pod.path, ifname: pod.ifname }))), ...strayRecords(pods)],
  };
}

// ---------------------------------------------------------------------------------------------
// The soak.

export interface SoakOptions {
  readonly cycles: number;
  readonly pods: number;
  /** Testbed prefix ('tqr' + digit) and subnet (80-89) */
  readonly prefix: string;
  readonly subnet: number;
  readonly seed?: number;
  readonly log?: (line: string) => void;
}

export interface SoakReport {
  seed: number;
  cycles: number;
  invocations: number;
  killsInjected: number;
  faultKills: number;
  timedKills: number;
  failLines: number;
  races: number;
  adoptions: number;
  checksPassed: number;
  /** invocations whose outcome broke a rule (listed in `problems`) */
  unexpected: number;
  problems: string[];
  leaked: { ifbs: number; qdiscs: number; filters: number; processes: number; lockFiles: number };
  leftovers: Leftovers;
  seconds: number;
}

/** Small deterministic PRNG (mulberry32), so a seed reproduces a run's choices. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Three policies the cycles switch between: both directions with classes, flat keys, egress only. */
function policies(subnet: number): object[] {
  return [
    {
      egress: { rate: '40mbit', classes: [{ name: 'db', rate: '20mbit', ceil: '40mbit', peers: [`198.18.${subnet}.3/32`], protocol: 'tcp', ports: [5432] }] },
      ingress: { rate: '30mbit', classes: [{ name: 'db', rate: '10mbit', peers: [`2001:2:${subnet.toString(16)}::3/128`] }] },
    },
    { ingressRate: 5_000_000, ingressBurst: 80_000, egressRate: 7_000_000, egressBurst: 80_000 },
    { egress: { rate: '10mbit' } },
  ];
}

function configFor(policy: object, pod: Pod): object {
  return { cniVersion: '1.0.0', name: 'soak', type: 'tcqos', ...policy, prevResult: prevResultFor('1.0.0', pod.path, pod.ifname) };
}

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const started = Date.now();
  const log = options.log ?? (() => undefined);
  const seed = options.seed ?? 1;
  const rand = random(seed);
  const bed = new Testbed(options.prefix, options.subnet);
  const report: SoakReport = {
    seed,
    cycles: 0, invocations: 0, killsInjected: 0, faultKills: 0, timedKills: 0, failLines: 0, races: 0, adoptions: 0,
    checksPassed: 0, unexpected: 0, problems: [],
    leaked: { ifbs: 0, qdiscs: 0, filters: 0, processes: 0, lockFiles: 0 },
    leftovers: { ifbs: [], qdiscs: [], filters: [], processes: [], lockFiles: [] },
    seconds: 0,
  };
  const pods: Pod[] = [];
  await bed.removeLeftovers();
  try {
    const runner = await bed.netns('runner');
    const hub = await bed.macvlanHub();
    for (let i = 0; i < options.pods; i++) pods.push(await bed.macvlanPod(hub, `pod${i}`, 10 + i));
    const choices = policies(options.subnet);

    const problem = (pod: Pod, cycle: number, what: string, ran?: PluginRun): void => {
      report.unexpected++;
      const detail = ran ? ` (exit ${ran.exitCode}, signal ${ran.signal}, stdout ${ran.stdout.slice(0, 300)})` : '';
      if (report.problems.length < 50) report.problems.push(`${pod.netns} cycle ${cycle}: ${what}${detail}`);
    };
    const call = async (pod: Pod, command: PluginCall['command'], policy: object, extraEnv?: Record<string, string>, killAfterMs?: number): Promise<PluginRun> => {
      report.invocations++;
      return runPlugin(runner, { command, config: configFor(policy, pod), netns: pod.path, ifname: pod.ifname, containerId: `soak-${pod.netns}`, ...(extraEnv ? { extraEnv } : {}) }, killAfterMs);
    };
    const del = async (pod: Pod, cycle: number, policy: object): Promise<void> => {
      const deleted = await call(pod, 'DEL', policy);
      if (deleted.exitCode !== 0 || deleted.stdout !== '') problem(pod, cycle, 'DEL failed', deleted);
    };
    const addAndCheck = async (pod: Pod, cycle: number, policy: object, what: string): Promise<void> => {
      const added = await call(pod, 'ADD', policy);
      if (added.exitCode !== 0) return problem(pod, cycle, `${what}: ADD failed`, added);
      const checked = await call(pod, 'CHECK', policy);
      if (checked.exitCode !== 0) return problem(pod, cycle, `${what}: CHECK failed after ADD`, checked);
      report.checksPassed++;
    };

    // The cycles are shared out over the pods; the pods run at the same time, each one in turn.
    let next = 0;
    let done = 0;
    const worker = async (pod: Pod): Promise<void> => {
      for (let cycle = next++; cycle < options.cycles; cycle = next++) {
        report.cycles++;
        const policy = choices[Math.floor(rand() * choices.length)]!;
        const dice = rand();
        if (dice < 0.25) {
          // the plugin's own kill points, then either DEL first or straight to a new ADD
          const point = ['after-read', 'after-ifb', 'after-tc'][Math.floor(rand() * 3)]!;
          const killed = await call(pod, 'ADD', policy, { TCQOS_FAULT: `kill:${point}` });
          if (killed.signal === 'SIGKILL') {
            report.killsInjected++;
            report.faultKills++;
          } else {
            problem(pod, cycle, `kill:${point} did not kill ADD`, killed);
          }
          if (rand() < 0.4) {
            report.adoptions++;
            // a retried ADD with the same config adopts what the killed one left
            await addAndCheck(pod, cycle, policy, `ADD after kill:${point}`);
          } else {
            await del(pod, cycle, policy);
            await addAndCheck(pod, cycle, policy, `ADD after kill:${point} and DEL`);
          }
        } else if (dice < 0.5) {
          // SIGKILL at a random moment of ADD: 0-40 ms (Node still starting) or 40-200 ms (ip/tc at work)
          const killed = await call(pod, 'ADD', policy, undefined, rand() < 0.5 ? Math.floor(rand() * 41) : 40 + Math.floor(rand() * 161));
          if (killed.killedByTimer) {
            report.killsInjected++;
            report.timedKills++;
          } else if (killed.exitCode !== 0) {
            problem(pod, cycle, 'ADD (not killed) failed', killed);
          }
          await del(pod, cycle, policy);
          await addAndCheck(pod, cycle, policy, 'ADD after a timed kill and DEL');
        } else if (dice < 0.6) {
          // SIGKILL at a random moment of DEL, then DEL again
          await addAndCheck(pod, cycle, policy, 'ADD');
          const killed = await call(pod, 'DEL', policy, undefined, Math.floor(rand() * 161));
          if (killed.killedByTimer) {
            report.killsInjected++;
            report.timedKills++;
          }
        } else if (dice < 0.7) {
          // a tc batch line that fails: the whole ADD is rolled back
          report.failLines++;
          const failed = await call(pod, 'ADD', policy, { TCQOS_FAULT: `fail-line:${Math.floor(rand() * 9)}` });
          if (failed.json?.['code'] !== 100) problem(pod, cycle, 'fail-line did not fail ADD with code 100', failed);
          const left = await podLeftovers(pod.netns);
          if (left.ifbs.length || left.qdiscs.length || left.filters.length) {
            problem(pod, cycle, `a failed ADD left ${JSON.stringify(left)}`);
          }
          await addAndCheck(pod, cycle, policy, 'ADD after a failed ADD');
        } else if (dice < 0.8) {
          // ADD and DEL of one attachment at the same time: shaped or clean, never half
          report.races++;
          const [added, deleted] = await Promise.all([call(pod, 'ADD', policy), call(pod, 'DEL', policy)]);
          if (added.exitCode !== 0) problem(pod, cycle, 'racing ADD failed', added);
          if (deleted.exitCode !== 0) problem(pod, cycle, 'racing DEL failed', deleted);
          const checked = await call(pod, 'CHECK', policy);
          const left = await podLeftovers(pod.netns);
          const clean = !left.ifbs.length && !left.qdiscs.length && !left.filters.length;
          if (checked.exitCode === 0) report.checksPassed++;
          else if (!clean) problem(pod, cycle, `after racing ADD and DEL neither shaped nor clean: ${JSON.stringify(left)}`, checked);
        } else {
          await addAndCheck(pod, cycle, policy, 'plain ADD');
        }
        await del(pod, cycle, policy);
        const left = await podLeftovers(pod.netns);
        if (left.ifbs.length || left.qdiscs.length || left.filters.length) problem(pod, cycle, `DEL left ${JSON.stringify(left)}`);
        if (++done % 100 === 0) log(`[soak] ${report.cycles} cycles, ${report.killsInjected} kills, ${report.unexpected} unexpected`);
      }
    };
    await Promise.all(pods.map((pod) => worker(pod)));

    // End: DEL of everything, then count.
    await Promise.all(pods.map((pod) => call(pod, 'DEL', choices[0]!)));
    report.leftovers = await leftovers(options.prefix, pods);
    report.leaked = {
      ifbs: report.leftovers.ifbs.length,
      qdiscs: report.leftovers.qdiscs.length,
      filters: report.leftovers.filters.length,
      processes: report.leftovers.processes.length,
      lockFiles: report.leftovers.lockFiles.length,
    };
  } finally {
    await bed.destroy();
    report.seconds = Math.round((Date.now() - started) / 100) / 10;
  }
  return report;
}

export function formatReport(report: SoakReport): string {
  return [
    `cycles run:               ${report.cycles} (${report.invocations} plugin runs, ${report.seconds} s, seed ${report.seed})`,
    `kills injected:           ${report.killsInjected} (${report.faultKills} at TCQOS_FAULT kill points, ${report.timedKills} at a random moment)`,
    `failed tc lines injected: ${report.failLines}`,
    `ADD/DEL races:            ${report.races}`,
    `ADDs adopting a crash:    ${report.adoptions}`,
    `CHECKs passed:            ${report.checksPassed}`,
    `unexpected outcomes:      ${report.unexpected}`,
    `leaked ifb devices:       ${report.leaked.ifbs}`,
    `leaked qdiscs:            ${report.leaked.qdiscs}`,
    `leaked filters:           ${report.leaked.filters}`,
    `leftover tcqos processes: ${report.leaked.processes}`,
    `leftover lock/temp/record files: ${report.leaked.lockFiles}`,
    ...report.problems.map((p) => `  problem: ${p}`),
    ...Object.entries(report.leftovers).flatMap(([kind, list]) => (list as string[]).map((item) => `  leftover ${kind}: ${item}`)),
  ].join('\n');
}

export function soakPassed(report: SoakReport): boolean {
  return report.unexpected === 0 && Object.values(report.leaked).every((n) => n === 0);
}

// `node bench/soak.ts`: the full soak.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const report = await runSoak({
    cycles: Number(process.env['SOAK_CYCLES'] ?? 1000),
    pods: Number(process.env['SOAK_PODS'] ?? 4),
    prefix: 'tqr9',
    subnet: 89,
    seed: Number(process.env['SOAK_SEED'] ?? Date.now() % 1_000_000),
    log: (line) => console.log(line),
  });
  console.log(formatReport(report));
  process.exitCode = soakPassed(report) ? 0 : 1;
}
