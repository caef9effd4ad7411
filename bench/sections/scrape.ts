/**
 * The node agent at 10, 100 and 250 attachments (issue 16): veth pods shaped by the built binary
 * (one class and the default each way, so an ifb each), the built agent watching them through the
 * fake API server, all in the runner namespace (the agent must share the node's namespace with the
 * host ends). With its deployed defaults (HTTPS, bearer token checked by TokenReview and
 * SubjectAccessReview), measured from the outside:
 * - a background refresh of the counters (every 3 s): CPU of two refreshes (the agent and the
 *   processes it started: /proc's utime, stime, cutime, cstime, from the end of one refresh to the end
 *   of the second next, as the agent's debug log tells), and processes started during one (strace -f
 *   on execve, distinct pids);
 * - /healthz every 25 ms while the counters refresh as often as the agent allows and /metrics is
 *   scraped every 250 ms;
 * - /metrics: wall time of 50 scrapes (a fresh TLS connection each) while the counters refresh every
 *   second, and the agent's RSS after each;
 * - a resync pass (every pod converged on its desired state, spread over the period): CPU and
 *   processes per pass, /healthz p99 meanwhile (each after the start's pass over every pod);
 * - at the largest size, drift healing: a class and its filters deleted by hand, and the time
 *   until the agent has put them back, with the resync period set to 2 s.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { loadAll } from 'js-yaml';
import { NetnsChild } from '../../test/helpers/child-rpc.ts';
import { must, run } from '../../test/helpers/run.ts';
import { envArgs, RUNNER, TCQOS_BINARY, type Bed } from '../lib/bed.ts';
import { max, median, percentile } from '../lib/stats.ts';
import type { Step } from '../lib/timed-worker.ts';
import { failuresOf, runJob } from '../lib/worker.ts';

export interface ScrapeCell {
  readonly attachments: number;
  /** 50 scrapes of /metrics, a new TLS connection each, counters refreshed every second: wall ms. */
  readonly metricsMs: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly metricsBytes: number;
  /** One background refresh of every attachment's counters. */
  readonly refresh: { readonly wallMs: number; readonly cpuMs: number; readonly processes: number };
  /** /healthz every 25 ms while refreshes run as often as the agent allows and /metrics is scraped every 250 ms. */
  readonly healthz: { readonly p50: number; readonly p99: number; readonly max: number; readonly samples: number; readonly failures: number };
  /** The agent's RSS (MiB) before the 50 scrapes and after each; and after refreshing as often as it allows. */
  readonly rssMiB: { readonly first: number; readonly last: number; readonly min: number; readonly max: number; readonly stressed: number };
  /** One resync pass over every pod (each attachment converged: kernel read, compared, nothing applied). */
  readonly resync: { readonly cpuMs: number; readonly processes: number; readonly healthzP99?: number };
  readonly unreadable: number;
}

export interface DriftResult {
  readonly attachments: number;
  readonly resyncSeconds: number;
  /** From the deletion to the class and its filters back, ms, each try. */
  readonly healMs: number[];
  readonly events: number;
}

export interface ScrapeResult {
  readonly cells: ScrapeCell[];
  readonly drift?: DriftResult;
  readonly attachSeconds: number;
}

const NODE_NAME = 'tqb-node';
const PORT = 9190;
const TOKEN = 'bench-scraper';
const PROBE = fileURLToPath(new URL('./scrape-probe.ts', import.meta.url));
const FAKE_APISERVER = fileURLToPath(new URL('../../test/helpers/fake-apiserver-child.ts', import.meta.url));
const ATTACH_PARALLEL = 10;
/** One class beside the default, each way: two HTB leaves per direction, an ifb for ingress. */
const LIGHT_POLICY = { rate: '20mbit', classes: [{ name: 'db', rate: '10mbit', peers: ['198.18.115.0/24'] }] };
const TICK_MS = 10;
/** The agent container's plain environment values in deploy/tcqos.yaml (NODE_OPTIONS: its heap sizes), so the agent measured is the one deployed. */
const DEPLOYED_ENV: Record<string, string> = (() => {
  const documents = loadAll(readFileSync(fileURLToPath(new URL('../../deploy/tcqos.yaml', import.meta.url)), 'utf8')) as Array<{ kind?: string }>;
  const daemonSet = documents.find((doc) => doc?.kind === 'DaemonSet') as { spec: { template: { spec: { containers: Array<{ name: string; env?: Array<{ name: string; value?: string }> }> } } } };
  const agent = daemonSet.spec.template.spec.containers.find((container) => container.name === 'agent')!;
  return Object.fromEntries((agent.env ?? []).flatMap((variable) => (variable.value === undefined ? [] : [[variable.name, variable.value]])));
})();

interface ScrapePod {
  readonly index: number;
  readonly netns: string;
  readonly path: string;
  readonly hostVeth: string;
  readonly containerId: string;
  readonly name: string;
}

export async function scrape(bed: Bed, sizes: readonly number[], log: (line: string) => void): Promise<ScrapeResult> {
  const api = await NetnsChild.start(RUNNER, FAKE_APISERVER, ['{}']);
  const kubeconfig = `${bed.work}/scrape-kubeconfig`;
  await api.call('writeKubeconfig', kubeconfig);
  await api.call('addToken', TOKEN, { username: 'prometheus' });
  await api.call('grant', 'prometheus', 'get', '/metrics');
  const probe = await NetnsChild.start(RUNNER, PROBE, [JSON.stringify({ scheme: 'https', host: '127.0.0.1', port: PORT })]);
  const pods: ScrapePod[] = [];
  const cells: ScrapeCell[] = [];
  let drift: DriftResult | undefined;
  const started = Date.now();
  try {
    for (const size of [...sizes].sort((a, b) => a - b)) {
      while (pods.length < size) pods.push(...(await attachBatch(bed, api, pods.length, Math.min(ATTACH_PARALLEL, size - pods.length))));
      log(`scrape: ${size} pods attached (${((Date.now() - started) / 1000).toFixed(0)} s so far)`);
      cells.push(await measure(bed, probe, kubeconfig, size, log));
    }
    drift = await driftHealing(bed, api, kubeconfig, pods, log);
  } finally {
    await probe.stop();
    await api.stop();
  }
  return { cells, ...(drift ? { drift } : {}), attachSeconds: (Date.now() - started) / 1000 };
}

/** `count` veth pods (host end in the runner), shaped by concurrent ADDs, known to the API server. */
async function attachBatch(bed: Bed, api: NetnsChild, from: number, count: number): Promise<ScrapePod[]> {
  const pods: ScrapePod[] = [];
  for (let index = from; index < from + count; index++) {
    const name = `sc${String(index).padStart(3, '0')}`;
    const netns = await bed.netns(name);
    const hostVeth = `tqbs${index}`;
    await must('ip', ['-n', RUNNER, 'link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
    await must('ip', ['-n', RUNNER, 'link', 'set', hostVeth, 'up']);
    await must('ip', ['-n', netns, 'link', 'set', 'eth0', 'up']);
    pods.push({ index, netns, path: `/var/run/netns/${netns}`, hostVeth, containerId: `tqb-${name}`, name });
  }
  const steps: Step[] = pods.map((pod) => ({
    key: 'ADD',
    argv: [TCQOS_BINARY],
    env: bed.cniEnv({
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: pod.containerId,
      CNI_NETNS: pod.path,
      CNI_IFNAME: 'eth0',
      TCQOS_STATE_DIR: bed.stateDir,
      CNI_ARGS: `K8S_POD_NAMESPACE=bench;K8S_POD_NAME=${pod.name};K8S_POD_UID=${uid(pod)}`,
    }),
    input: JSON.stringify({
      cniVersion: '1.0.0',
      name: 'tqbscrape',
      type: 'tcqos',
      egress: LIGHT_POLICY,
      ingress: LIGHT_POLICY,
      prevResult: {
        cniVersion: '1.0.0',
        interfaces: [{ name: pod.hostVeth }, { name: 'eth0', sandbox: pod.path }],
        ips: [{ address: `198.18.113.${pod.index + 2}/24`, interface: 1 }],
      },
    }),
    timed: true,
  }));
  const report = await runJob({ mode: 'concurrent', steps });
  const failed = failuresOf(report);
  if (failed.length) throw new Error(`scrape: ${failed.length} ADDs failed: ${failed[0]!.output}`);
  for (const pod of pods) await api.call('setPod', { namespace: 'bench', name: pod.name, uid: uid(pod), nodeName: NODE_NAME });
  return pods;
}

function uid(pod: ScrapePod): string {
  return `00000000-0000-4000-8000-${String(pod.index).padStart(12, '0')}`;
}

// ---------------------------------------------------------------------------------------------
// The agent process and what /proc says of it.

interface Agent {
  readonly pid: number;
  readonly child: ChildProcess;
  stderr: string;
  /** Refreshes of the counters done so far, from the agent's debug log (no scrape needed to know). */
  refreshes: number;
  /** Waiters for the next refresh's end. */
  readonly onRefresh: Array<() => void>;
}

async function startAgent(bed: Bed, kubeconfig: string, settings: Record<string, unknown>): Promise<Agent> {
  const file = `${bed.work}/scrape-agent.json`;
  // debug: the snapshot logs each refresh's end, which the bench waits on
  writeFileSync(file, JSON.stringify({ logLevel: 'debug', gcSeconds: 3600, ...settings }));
  const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...DEPLOYED_ENV };
  // ip netns exec and env exec: the child's pid is the agent's
  const child = spawn('ip', ['netns', 'exec', RUNNER, 'env', '-i', ...envArgs(env), TCQOS_BINARY, 'agent', '--node', NODE_NAME, '--listen', `127.0.0.1:${PORT}`, '--kubeconfig', kubeconfig, '--settings', file, '--state-dir', bed.stateDir], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const agent: Agent = { pid: child.pid!, child, stderr: '', refreshes: 0, onRefresh: [] };
  let partial = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    const text = partial + chunk.toString();
    const lines = text.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (line.includes('"msg":"read the counters for /metrics"')) {
        agent.refreshes++;
        for (const resolve of agent.onRefresh.splice(0)) resolve();
      } else if (!line.includes('"level":20')) agent.stderr = (agent.stderr + line + '\n').slice(-8000);
    }
  });
  const deadline = Date.now() + 30_000;
  while ((await run('ip', ['netns', 'exec', RUNNER, 'curl', '-sk', '--max-time', '2', '-o', '/dev/null', '-w', '%{http_code}', `https://127.0.0.1:${PORT}/healthz`])).stdout !== '200') {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`the agent did not come up:\n${agent.stderr}`);
    }
    await sleep(100);
  }
  return agent;
}

/** Resolves when the agent has finished its next refresh of the counters. */
function nextRefresh(agent: Agent, timeoutMs = 300_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no refresh within ${timeoutMs} ms:\n${agent.stderr}`)), timeoutMs);
    agent.onRefresh.push(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function stopAgent(agent: Agent): Promise<void> {
  const exited = new Promise((resolve) => agent.child.once('exit', resolve));
  agent.child.kill('SIGTERM');
  const timer = setTimeout(() => agent.child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** CPU of the agent and of every child it waited for, ms (10 ms ticks). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) * TICK_MS;
}

function rssMiB(pid: number): number {
  return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

/** One series' value from /metrics, asked from inside the runner with curl (not through the probe's numbers). */
async function scraped(agent: Agent, series: string): Promise<number> {
  const ran = await run('ip', ['netns', 'exec', RUNNER, 'curl', '-sk', '--max-time', '5', '-H', `Authorization: Bearer ${TOKEN}`, `https://127.0.0.1:${PORT}/metrics`]);
  if (agent.child.exitCode !== null) throw new Error(`the agent exited:\n${agent.stderr}`);
  const line = ran.stdout.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

/** Counts the processes the agent starts while `during` runs: strace -f on execve, distinct pids other than the agent's. */
async function processesDuring(pid: number, work: string, during: () => Promise<void>): Promise<number> {
  const out = `${work}/strace-${pid}.txt`;
  const tracer = execa('strace', ['-f', '-qq', '-e', 'trace=execve', '-e', 'signal=none', '-o', out, '-p', String(pid)], { reject: false });
  await sleep(500); // attached
  try {
    await during();
  } finally {
    tracer.kill('SIGINT');
    await tracer;
  }
  const traced = readFileSync(out, 'utf8');
  rmSync(out);
  const pids = new Set(
    traced
      .split('\n')
      .filter((line) => line.includes('execve('))
      .map((line) => line.split(' ')[0]),
  );
  pids.delete(String(pid));
  return pids.size;
}

async function untilSeries(agent: Agent, series: string, atLeast: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await scraped(agent, series)) < atLeast) {
    if (Date.now() > deadline) throw new Error(`${series} did not reach ${atLeast}:\n${agent.stderr}`);
    await sleep(50);
  }
}

// ---------------------------------------------------------------------------------------------

async function measure(bed: Bed, probe: NetnsChild, kubeconfig: string, size: number, log: (line: string) => void): Promise<ScrapeCell> {
  // A: counters refreshed every 3 s, no resync. CPU over two refreshes (from the end of one to the
  // end of the second next, known from the agent's log: no scrape in between to cost it CPU), then
  // processes over one (strace attached between two refreshes).
  const converged = 'tcqos_agent_reconciles_total{result="unchanged"}';
  let agent = await startAgent(bed, kubeconfig, { resyncSeconds: 3600, metricsRefreshSeconds: 3 });
  let refresh: ScrapeCell['refresh'];
  let health: number[];
  const metricsMs: number[] = [];
  let metricsBytes = 0;
  const rss: number[] = [];
  let stressedRss = 0;
  let unreadable = 0;
  try {
    await untilSeries(agent, converged, size, 300_000); // the start's pass over every pod is done
    await nextRefresh(agent);
    const cpuBefore = cpuMs(agent.pid);
    await nextRefresh(agent);
    await nextRefresh(agent);
    const cpu = (cpuMs(agent.pid) - cpuBefore) / 2;
    const wall = ((await scraped(agent, 'tcqos_agent_stats_refresh_seconds_sum')) * 1000) / (await scraped(agent, 'tcqos_agent_stats_refresh_seconds_count'));
    await nextRefresh(agent);
    const refreshesBefore = agent.refreshes;
    const processes = await processesDuring(agent.pid, bed.work, () => nextRefresh(agent));
    refresh = { wallMs: wall, cpuMs: cpu, processes: processes / (agent.refreshes - refreshesBefore) };
    unreadable = await scraped(agent, 'tcqos_agent_stats_unreadable_attachments');
  } finally {
    await stopAgent(agent);
  }
  // A': counters refreshed as often as the agent allows (a pause three times the refresh's length
  // between two): /healthz every 25 ms while /metrics is scraped every 250 ms
  agent = await startAgent(bed, kubeconfig, { resyncSeconds: 3600, metricsRefreshSeconds: 0.05 });
  try {
    await untilSeries(agent, converged, size, 300_000); // the start's pass over every pod is done
    await nextRefresh(agent);
    [health] = await Promise.all([probe.call<number[]>('poll', '/healthz', 10_000, 25), probe.call<number[]>('poll', '/metrics', 10_000, 250, TOKEN)]);
    stressedRss = rssMiB(agent.pid);
  } finally {
    await stopAgent(agent);
  }
  // B: counters refreshed every second (the deployed default is 5 s): 50 scrapes 200 ms apart,
  // the wall time of each and the agent's RSS after each
  agent = await startAgent(bed, kubeconfig, { resyncSeconds: 3600, metricsRefreshSeconds: 1 });
  try {
    await untilSeries(agent, converged, size, 300_000);
    await nextRefresh(agent);
    rss.push(rssMiB(agent.pid));
    for (let i = 0; i < 50; i++) {
      const answer = await probe.call<{ status: number; ms: number; bytes: number }>('get', '/metrics', TOKEN);
      if (answer.status !== 200) throw new Error(`/metrics answered ${answer.status}`);
      metricsMs.push(answer.ms);
      metricsBytes = answer.bytes;
      rss.push(rssMiB(agent.pid));
      await sleep(200);
    }
  } finally {
    await stopAgent(agent);
  }
  // C: a resync every 10 s, no refresh after the first: CPU and processes of a pass (every pod
  // converged: its kernel state read and compared, nothing to change)
  agent = await startAgent(bed, kubeconfig, { resyncSeconds: 10, metricsRefreshSeconds: 3600 });
  let resync: { cpuMs: number; processes: number };
  let resyncHealth: number[];
  try {
    await untilSeries(agent, converged, 2 * size, 300_000); // the start's pass and a first resync: steady state
    const cpuBefore = cpuMs(agent.pid);
    const before = await scraped(agent, converged);
    await sleep(30_000);
    const passes = ((await scraped(agent, converged)) - before) / size;
    const cpu = (cpuMs(agent.pid) - cpuBefore) / passes;
    const traced = await scraped(agent, converged);
    const processes = await processesDuring(agent.pid, bed.work, () => sleep(15_000));
    resync = { cpuMs: cpu, processes: processes / (((await scraped(agent, converged)) - traced) / size) };
    resyncHealth = await probe.call<number[]>('poll', '/healthz', 10_000, 25);
  } finally {
    await stopAgent(agent);
  }
  const ok = health.filter((ms) => ms >= 0);
  const cell: ScrapeCell = {
    attachments: size,
    metricsMs: { p50: percentile(metricsMs, 50), p99: percentile(metricsMs, 99), max: max(metricsMs) },
    metricsBytes,
    refresh,
    healthz: { p50: percentile(ok, 50), p99: percentile(ok, 99), max: max(ok), samples: health.length, failures: health.length - ok.length },
    rssMiB: { first: rss[0]!, last: rss[rss.length - 1]!, min: Math.min(...rss), max: Math.max(...rss), stressed: stressedRss },
    resync: { ...resync, healthzP99: percentile(resyncHealth.filter((ms) => ms >= 0), 99) },
    unreadable,
  };
  log(
    `scrape ${size}: /metrics p50 ${cell.metricsMs.p50.toFixed(1)} ms p99 ${cell.metricsMs.p99.toFixed(1)} ms (${(metricsBytes / 1024).toFixed(0)} KiB); ` +
      `refresh ${refresh.wallMs.toFixed(0)} ms wall, ${refresh.cpuMs.toFixed(0)} ms CPU (${(refresh.cpuMs / size).toFixed(2)}/attachment), ${refresh.processes.toFixed(1)} processes; ` +
      `/healthz p50 ${cell.healthz.p50.toFixed(1)} p99 ${cell.healthz.p99.toFixed(1)} ms (max ${cell.healthz.max.toFixed(1)}, ${cell.healthz.failures} failed of ${health.length}); RSS ${cell.rssMiB.first.toFixed(0)} -> ${cell.rssMiB.last.toFixed(0)} MiB ` +
      `(max ${cell.rssMiB.max.toFixed(0)}; ${stressedRss.toFixed(0)} after refreshing as often as allowed); resync pass ${resync.cpuMs.toFixed(0)} ms CPU, ${resync.processes.toFixed(1)} processes, /healthz p99 ${cell.resync.healthzP99?.toFixed(1)} ms meanwhile; unreadable ${unreadable}`,
  );
  return cell;
}

/** A class and its filters deleted by hand, three times: how long until the agent put them back (resync every 2 s). */
async function driftHealing(bed: Bed, api: NetnsChild, kubeconfig: string, pods: readonly ScrapePod[], log: (line: string) => void): Promise<DriftResult> {
  const resyncSeconds = 2;
  const agent = await startAgent(bed, kubeconfig, { resyncSeconds, metricsRefreshSeconds: 3600 });
  const healMs: number[] = [];
  try {
    await sleep(resyncSeconds * 1000 + 1000);
    for (const pod of pods.slice(0, 3)) {
      const site = siteOf(bed, pod);
      const classes = async () => (await must('ip', ['netns', 'exec', site.netns, 'tc', 'class', 'show', 'dev', site.dev])).split('\n');
      const leaf = (await classes()).find((line) => line.startsWith('class htb ') && line.includes('parent 7c05:1 ') && line.includes(' leaf '));
      if (!leaf) throw new Error(`no leaf class on ${site.dev} in ${site.netns}`);
      const id = leaf.split(' ')[2]!;
      await must('ip', ['netns', 'exec', site.netns, 'tc', 'filter', 'del', 'dev', site.dev, 'parent', '7c05:']);
      await must('ip', ['netns', 'exec', site.netns, 'tc', 'class', 'del', 'dev', site.dev, 'classid', id]);
      const deleted = Date.now();
      for (;;) {
        const back = (await classes()).some((line) => line.startsWith(`class htb ${id} `));
        const filters = (await run('ip', ['netns', 'exec', site.netns, 'tc', 'filter', 'show', 'dev', site.dev])).stdout.includes(`flowid ${id}`);
        if (back && filters) break;
        if (Date.now() - deleted > 180_000) throw new Error(`class ${id} of ${pod.name} not restored:\n${agent.stderr.slice(-2000)}`);
        await sleep(20);
      }
      healMs.push(Date.now() - deleted);
    }
  } finally {
    await stopAgent(agent);
  }
  const events = (await api.get<Array<{ reason: string }>>('events')).filter((event) => event.reason === 'TcqosDriftHealed').length;
  log(`scrape: drift healed in ${healMs.map((ms) => `${ms} ms`).join(', ')} (resync every ${resyncSeconds} s, ${pods.length} attachments); ${events} Events`);
  return { attachments: pods.length, resyncSeconds, healMs, events };
}

/** Where the pod's egress tree sits: the host end of its veth in the runner, or its eth0. */
function siteOf(bed: Bed, pod: ScrapePod): { netns: string; dev: string } {
  const file = `${bed.stateDir}/attachments/eth0@${pod.containerId}.json`;
  const record = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { host?: { interface: string } }) : {};
  return record.host ? { netns: RUNNER, dev: record.host.interface } : { netns: pod.netns, dev: 'eth0' };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// Report.

const TARGET = { metricsMs: 100, healthzMs: 100, cpuPerAttachmentMs: 8, processesPerAttachment: 1, rssMiB: 150 } as const;

export function scrapeReport(result: ScrapeResult, verdicts: string[]): string {
  const f = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '–');
  const rows = result.cells.map((cell) => [
    String(cell.attachments),
    `${f(cell.metricsMs.p50)} / ${f(cell.metricsMs.p99)}`,
    `${f(cell.metricsBytes / 1024, 0)} KiB`,
    `${f(cell.refresh.wallMs, 0)} ms`,
    `${f(cell.refresh.cpuMs, 0)} ms (${f(cell.refresh.cpuMs / cell.attachments, 2)})`,
    `${f(cell.refresh.processes, 0)} (${f(cell.refresh.processes / cell.attachments, 2)})`,
    `${f(cell.healthz.p50)} / ${f(cell.healthz.p99)} / ${f(cell.healthz.max)}${cell.healthz.failures ? ` (${cell.healthz.failures} failed)` : ''}`,
    `${f(cell.rssMiB.first, 0)} → ${f(cell.rssMiB.last, 0)} (max ${f(cell.rssMiB.max, 0)}; ${f(cell.rssMiB.stressed, 0)} refreshing often)`,
    `${f(cell.resync.cpuMs, 0)} ms (${f(cell.resync.cpuMs / cell.attachments, 2)})`,
    `${f(cell.resync.processes, 0)} (${f(cell.resync.processes / cell.attachments, 2)})`,
    f(cell.resync.healthzP99 ?? Number.NaN),
  ]);
  const largest = result.cells[result.cells.length - 1];
  if (largest) {
    const n = largest.attachments;
    const perAttachment = largest.refresh.cpuMs / n;
    verdicts.push(`/metrics at ${n} attachments: p99 ${f(largest.metricsMs.p99)} ms (target ≤ ${TARGET.metricsMs}) ${largest.metricsMs.p99 <= TARGET.metricsMs ? '✓' : '✗'}`);
    verdicts.push(`/healthz p99 while counters refresh, ${n} attachments: ${f(largest.healthz.p99)} ms (target ≤ ${TARGET.healthzMs}) ${largest.healthz.p99 <= TARGET.healthzMs ? '✓' : '✗'}`);
    verdicts.push(
      `a refresh per attachment: ${f(largest.refresh.processes / n, 2)} processes (target ≤ ${TARGET.processesPerAttachment}) ${largest.refresh.processes / n <= TARGET.processesPerAttachment + 0.01 ? '✓' : '✗'}, ` +
        `${f(perAttachment, 2)} ms CPU (target ≤ ${TARGET.cpuPerAttachmentMs}) ${perAttachment <= TARGET.cpuPerAttachmentMs ? '✓' : '✗'}`,
    );
    verdicts.push(`agent RSS at ${n} attachments over 50 scrapes: max ${f(largest.rssMiB.max, 0)} MiB (target < ${TARGET.rssMiB}) ${largest.rssMiB.max < TARGET.rssMiB ? '✓' : '✗'}`);
    const smallest = result.cells[0]!;
    if (smallest !== largest) {
      const ratio = largest.resync.cpuMs / n / (smallest.resync.cpuMs / smallest.attachments);
      verdicts.push(`resync CPU per attachment at ${n} against ${smallest.attachments}: ${f(ratio, 2)}× (linear: about 1×)`);
    }
  }
  const drift = result.drift
    ? `Drift healing (a leaf class and every filter deleted by hand on one attachment of ${result.drift.attachments}, resync every ${result.drift.resyncSeconds} s): ` +
      `restored in ${result.drift.healMs.map((ms) => `${ms} ms`).join(', ')}; ${result.drift.events} TcqosDriftHealed Events.`
    : '';
  return [
    '',
    '### The node agent: /metrics, refresh, resync (issue 16)',
    '',
    'Veth pods shaped by the built binary (a class and the default each way), the built agent in the runner namespace with its deployed defaults ' +
      '(HTTPS, a bearer token checked by TokenReview and SubjectAccessReview; a new TLS connection per request). CPU: the agent and its children ' +
      '(/proc utime+stime+cutime+cstime); processes: distinct pids calling execve under `strace -f`; resync: one pass converging every pod, nothing to change. ' +
      'In parentheses: per attachment.',
    '',
    `| attachments | /metrics p50 / p99 ms | size | refresh wall | refresh CPU | processes per refresh | /healthz p50 / p99 / max ms (refreshing often) | RSS MiB over 50 scrapes | resync pass CPU | processes per pass | /healthz p99 ms (resyncing) |`,
    `|---|---|---|---|---|---|---|---|---|---|---|`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
    '',
    drift,
    '',
    `Median refresh CPU per attachment over the sizes: ${f(median(result.cells.map((cell) => cell.refresh.cpuMs / cell.attachments)), 2)} ms.`,
  ].join('\n');
}
