/**
 * BandwidthPolicies (issue 19): the built agent in the runner namespace against the fake API server
 * (served from the runner as the scrape section does), veth pods shaped on their host ends by the
 * built binary, all under a state directory of their own.
 * - Live: N pods selected by one policy; the policy created, then edited twice: from the change at
 *   the API server to each pod's new shaping applied (the agent's "applied" log line, written after
 *   the tc batch ran), the last of the N and the median; afterwards every pod's tc state is checked.
 * - From the first packet: new pods of the selection bound to the node, then their ADD after a
 *   delay (0 ms: the sandbox at the same moment as the binding; 50 ms): the share whose root class
 *   has the policy's rate when ADD returns (read from tc at once), and for the others the time
 *   after the ADD until it has; and pods added before the agent could see them at all (the pod
 *   object appears after the ADD): the time until their policy is in force.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { NetnsChild } from '../../test/helpers/child-rpc.ts';
import { must, run } from '../../test/helpers/run.ts';
import { ifbName } from '../../src/tc/handles.ts';
import { envArgs, TCQOS_BINARY, type Bed } from '../lib/bed.ts';
import { max, median } from '../lib/stats.ts';

export interface PolicyEditCell {
  readonly change: string;
  /** From the change at the API server until the last of the pods was re-shaped, ms. */
  readonly allMs: number;
  readonly medianMs: number;
}

export interface FirstPacketCell {
  /** Delay between the pod bound to the node and its ADD, ms. */
  readonly delayMs: number;
  readonly pods: number;
  /** Pods whose shaping had the policy's rate when ADD returned. */
  readonly shapedAtAdd: number;
  /** For the others: from ADD's return to the policy in force, ms. */
  readonly laterMs: number[];
}

export interface PolicyResult {
  readonly pods: number;
  readonly edits: PolicyEditCell[];
  /** Pods of the N whose tc state had the last edit's rate at the end. */
  readonly verified: number;
  readonly firstPacket: FirstPacketCell[];
  /** Pods added before the agent could see them: from the pod object's creation to the policy in force, ms. */
  readonly unseenMs: number[];
}

const NODE_NAME = 'tqb-pol-node';
const PORT = 9191;
const NS = 'bench';
const FAKE_APISERVER = fileURLToPath(new URL('../../test/helpers/fake-apiserver-child.ts', import.meta.url));
const LABELS = { app: 'bench' };
const CAP = '100mbit';
const spec = (rate: string) => ({ podSelector: { matchLabels: LABELS }, egress: { rate } });

interface BenchPod {
  readonly index: number;
  readonly name: string;
  readonly path: string;
  readonly hostVeth: string;
  readonly containerId: string;
  readonly uid: string;
}

/** `runner`: the namespace holding the host ends, the fake API server and the agent (the bench's runner). */
export async function policy(bed: Pick<Bed, 'work' | 'netns'>, runner: string, count: number, log: (line: string) => void): Promise<PolicyResult> {
  const stateDir = `${bed.work}/policy-state`;
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const api = await NetnsChild.start(runner, FAKE_APISERVER, ['{}']);
  const kubeconfig = `${bed.work}/policy-kubeconfig`;
  await api.call('writeKubeconfig', kubeconfig);
  let agent: AgentRun | undefined;
  try {
    const pods: BenchPod[] = [];
    for (let index = 0; index < count; index++) {
      const pod = await newPod(bed, runner, index);
      await api.call('setPod', { namespace: NS, name: pod.name, uid: pod.uid, nodeName: NODE_NAME, labels: LABELS });
      await add(runner, pod, stateDir);
      pods.push(pod);
    }
    log(`policy: ${count} pods attached`);
    agent = await startAgent(bed, runner, stateDir, kubeconfig);
    const edits: PolicyEditCell[] = [];
    for (const [change, rate] of [['created', '20mbit'], ['edited', '10mbit'], ['edited again', '30mbit']] as const) {
      const since = Date.now();
      await api.call('setPolicy', NS, 'bench', spec(rate));
      const times = await agent.applied(new Set(pods.map((pod) => pod.name)), since, 120_000);
      edits.push({ change: `${change} (${rate})`, allMs: max(times), medianMs: median(times) });
      log(`policy ${change} (${rate}): ${count} pods re-shaped, the last ${max(times)} ms after the change (median ${median(times)} ms)`);
    }
    let verified = 0;
    for (const pod of pods) if ((await rootRate(runner, pod)) === 30_000_000) verified++;
    const firstPacket: FirstPacketCell[] = [];
    let index = count;
    for (const delayMs of [0, 50]) {
      const cell: { shapedAtAdd: number; laterMs: number[] } = { shapedAtAdd: 0, laterMs: [] };
      for (let i = 0; i < 10; i++) {
        const pod = await newPod(bed, runner, index++);
        await api.call('setPod', { namespace: NS, name: pod.name, uid: pod.uid, nodeName: NODE_NAME, labels: LABELS });
        if (delayMs) await sleep(delayMs);
        await add(runner, pod, stateDir);
        const returned = Date.now();
        if ((await rootRate(runner, pod)) === 30_000_000) cell.shapedAtAdd++;
        else {
          await untilRate(runner, pod, 30_000_000, 30_000);
          cell.laterMs.push(Date.now() - returned);
        }
      }
      firstPacket.push({ delayMs, pods: 10, ...cell });
      log(`policy: new pods, ADD ${delayMs} ms after the binding: ${cell.shapedAtAdd} of 10 shaped by the policy when ADD returned; the others after ${cell.laterMs.join(', ') || '-'} ms`);
    }
    const unseenMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const pod = await newPod(bed, runner, index++);
      await add(runner, pod, stateDir);
      const created = Date.now();
      await api.call('setPod', { namespace: NS, name: pod.name, uid: pod.uid, nodeName: NODE_NAME, labels: LABELS });
      await untilRate(runner, pod, 30_000_000, 30_000);
      unseenMs.push(Date.now() - created);
    }
    log(`policy: pods added before the agent could see them, shaped by their policy ${unseenMs.join(', ')} ms after the pod object appeared`);
    return { pods: count, edits, verified, firstPacket, unseenMs };
  } finally {
    await agent?.stop();
    await api.stop();
  }
}

async function newPod(bed: Pick<Bed, 'netns'>, runner: string, index: number): Promise<BenchPod> {
  const name = `pol${String(index).padStart(3, '0')}`;
  const netns = await bed.netns(name);
  const hostVeth = `tqbp${index}`;
  await must('ip', ['-n', runner, 'link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
  await must('ip', ['-n', runner, 'link', 'set', hostVeth, 'up']);
  await must('ip', ['-n', netns, 'link', 'set', 'eth0', 'up']);
  return { index, name, path: `/var/run/netns/${netns}`, hostVeth, containerId: `tqb-${name}`, uid: `00000000-0000-4000-8001-${String(index).padStart(12, '0')}` };
}

/** ADD as containerd runs it for the pod, from the runner (where the host ends are). */
async function add(runner: string, pod: BenchPod, stateDir: string): Promise<void> {
  const env = {
    PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: 'ADD',
    CNI_CONTAINERID: pod.containerId,
    CNI_NETNS: pod.path,
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/usr/lib/cni',
    TCQOS_STATE_DIR: stateDir,
    CNI_ARGS: `K8S_POD_NAMESPACE=${NS};K8S_POD_NAME=${pod.name};K8S_POD_UID=${pod.uid}`,
  };
  const input = JSON.stringify({
    cniVersion: '1.0.0',
    name: 'tqbpolicy',
    type: 'tcqos',
    egress: { rate: CAP },
    prevResult: { cniVersion: '1.0.0', interfaces: [{ name: pod.hostVeth }, { name: 'eth0', sandbox: pod.path }], ips: [{ address: `198.18.114.${(pod.index % 250) + 2}/24`, interface: 1 }] },
  });
  const ran = await run('ip', ['netns', 'exec', runner, 'env', '-i', ...envArgs(env), TCQOS_BINARY], { input, timeoutMs: 60_000 });
  if (ran.exitCode !== 0) throw new Error(`policy: ADD of ${pod.name} failed: ${ran.stdout}${ran.stderr}`);
}

/** The rate of the pod's egress root class (bit/s): on the ifb of its host end, where a veth pod's egress is shaped. */
async function rootRate(runner: string, pod: BenchPod): Promise<number | undefined> {
  const text = (await run('ip', ['netns', 'exec', runner, 'tc', 'class', 'show', 'dev', ifbName(pod.hostVeth)])).stdout;
  const root = text.split('\n').find((line) => line.startsWith('class htb ') && line.includes(' root '));
  const found = root && /rate (\d+(?:\.\d+)?)([KMG]?)bit/.exec(root);
  return found ? Math.round(Number(found[1]) * ({ '': 1, K: 1e3, M: 1e6, G: 1e9 } as Record<string, number>)[found[2]!]!) : undefined;
}

/** Waits until the pod's root class has `rate`. */
async function untilRate(runner: string, pod: BenchPod, rate: number, timeoutMs: number): Promise<void> {
  const started = Date.now();
  while ((await rootRate(runner, pod)) !== rate) {
    if (Date.now() - started > timeoutMs) throw new Error(`policy: ${pod.name} never reached ${rate} bit/s`);
    await sleep(10);
  }
}

interface AgentRun {
  /** Resolves with, per pod named, ms from `since` to its "applied" log line. */
  applied(names: Set<string>, since: number, timeoutMs: number): Promise<number[]>;
  stop(): Promise<void>;
}

async function startAgent(bed: Pick<Bed, 'work'>, runner: string, stateDir: string, kubeconfig: string): Promise<AgentRun> {
  const file = `${bed.work}/policy-agent.json`;
  writeFileSync(file, JSON.stringify({ logLevel: 'info', resyncSeconds: 3600, gcSeconds: 3600, metricsRefreshSeconds: 3600, metricsAuth: 'none' }));
  const child: ChildProcess = spawn(
    'ip',
    ['netns', 'exec', runner, 'env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', TCQOS_BINARY, 'agent', '--node', NODE_NAME, '--listen', `127.0.0.1:${PORT}`, '--kubeconfig', kubeconfig, '--settings', file, '--state-dir', stateDir],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const lines: Array<{ time: number; msg: string; pod?: string }> = [];
  let partial = '';
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    const text = partial + chunk.toString();
    const split = text.split('\n');
    partial = split.pop()!;
    for (const line of split) {
      stderr = (stderr + line + '\n').slice(-8000);
      try {
        lines.push(JSON.parse(line) as { time: number; msg: string; pod?: string });
      } catch {
        // not JSON: kept in stderr for the error message
      }
    }
  });
  const started = Date.now();
  while (!lines.some((line) => line.msg === 'watching the BandwidthPolicies') || !lines.some((line) => line.msg === 'watching the pods of node ' + NODE_NAME)) {
    if (Date.now() - started > 30_000 || child.exitCode !== null) throw new Error(`policy: the agent did not come up:\n${stderr}`);
    await sleep(50);
  }
  await sleep(2000); // the start's pass over every pod
  return {
    async applied(names, since, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const times = new Map<string, number>();
        for (const line of lines) if (line.msg === 'applied the pod annotations' && line.time >= since && line.pod && names.has(line.pod) && !times.has(line.pod)) times.set(line.pod, line.time - since);
        if (times.size === names.size) return [...times.values()];
        if (Date.now() > deadline) throw new Error(`policy: ${times.size} of ${names.size} pods re-shaped after ${timeoutMs} ms:\n${stderr}`);
        await sleep(50);
      }
    },
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function policyReport(result: PolicyResult, verdicts: string[]): string {
  const last = result.edits.reduce((worst, cell) => Math.max(worst, cell.allMs), 0);
  verdicts.push(`BandwidthPolicy change to ${result.pods} selected pods re-shaped: the last after ${last} ms (target ≤ 2000) ${last <= 2000 ? '✓' : '✗'}`);
  const rows = result.edits.map((cell) => `| ${cell.change} | ${cell.allMs} | ${cell.medianMs} |`);
  const first = result.firstPacket.map(
    (cell) => `| ${cell.delayMs} ms | ${cell.shapedAtAdd} of ${cell.pods} | ${cell.laterMs.length ? `${max(cell.laterMs)} ms (${cell.laterMs.join(', ')})` : '–'} |`,
  );
  return [
    '',
    '### BandwidthPolicies: live changes and the first packet (issue 19)',
    '',
    `${result.pods} veth pods (shaped on their host ends by the built binary, cap ${CAP}) selected by one policy; the built agent in the runner namespace against the fake API server. ` +
      'Time from the change at the API server to each pod\'s new shaping applied (the agent logs it after the tc batch ran):',
    '',
    '| change | last pod, ms | median, ms |',
    '|---|---|---|',
    ...rows,
    '',
    `Afterwards ${result.verified} of ${result.pods} pods had the last edit's rate in tc.`,
    '',
    'New pods of the selection: bound to the node, then ADD after a delay; shaped by the policy when ADD returned (tc read at once), else the time after ADD until it was:',
    '',
    '| ADD after the binding | shaped at ADD | others: worst (each) |',
    '|---|---|---|',
    ...first,
    '',
    `Pods added before the agent could see them (the pod object created after the ADD): shaped by their policy ${result.unseenMs.map((ms) => `${ms} ms`).join(', ')} after the object appeared.`,
  ].join('\n');
}
