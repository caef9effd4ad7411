/**
 * The built binary's `tcqos agent` against the fake API server (no kube-apiserver can be installed
 * here), on a real macvlan pod shaped by a real ADD: an annotation edit changes a live flow's rate
 * (and how long that takes, edit to wire), an invalid edit keeps the shaping and posts an Event, a
 * restart applies an edit made while the agent was down, and Prometheus scrapes the agent's
 * per-class byte counters.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classFromText } from '../../src/netns/observe.ts';
import { FakeApiServer } from '../helpers/fake-apiserver.ts';
import { expectShapedTo, goodputMbit } from '../helpers/iperf.ts';
import { invoke, prevResultFor, TCQOS_BINARY } from '../helpers/plugin.ts';
import { startPrometheus, type PrometheusServer } from '../helpers/prometheus.ts';
import { must, run } from '../helpers/run.ts';
import { Testbed, type Pod } from '../helpers/testbed.ts';

const bed = new Testbed('tqagt', 67);
const NODE = 'tqagt-node';
const NETWORK = 'agtnet';
const CONTAINER = 'tqagt-web-0001';
const POD = { namespace: 'shop', name: 'web', uid: '6f1c3c52-0000-4000-8000-00000000a9e7' };
const policy = (rate: string) => JSON.stringify({ egress: { rate } });

let runner: string;
let pod: Pod;
let peer: Pod;
let stateDir: string;
let fake: FakeApiServer;
let agent: AgentProcess | undefined;
let prometheus: PrometheusServer | undefined;

/** `dist/tcqos agent` as a child process: its JSON log lines, its port, stopped by its pid. */
class AgentProcess {
  readonly lines: Array<Record<string, unknown>> = [];
  private readonly child: ChildProcess;
  private readonly exited: Promise<number | null>;
  private buffered = '';
  private code: number | null | undefined;

  private constructor(child: ChildProcess) {
    this.child = child;
    child.stderr!.on('data', (chunk: Buffer) => {
      this.buffered += chunk.toString();
      const lines = this.buffered.split('\n');
      this.buffered = lines.pop()!;
      for (const line of lines) {
        try {
          this.lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          this.lines.push({ msg: `(not JSON) ${line}` });
        }
      }
    });
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    void this.exited.then((code) => (this.code = code));
  }

  static async start(): Promise<AgentProcess> {
    const settings = join(stateDir, 'agent.json');
    writeFileSync(settings, JSON.stringify({ logLevel: 'debug', resyncSeconds: 2, gcSeconds: 2, relistBackoff: { initialSeconds: 0.2, maxSeconds: 2 } }));
    fake.writeKubeconfig(join(stateDir, 'kubeconfig'));
    const child = spawn(
      TCQOS_BINARY,
      ['agent', '--node', NODE, '--listen', '127.0.0.1:0', '--kubeconfig', join(stateDir, 'kubeconfig'), '--settings', settings],
      { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', TCQOS_STATE_DIR: stateDir }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const started = new AgentProcess(child);
    await until(() => started.port !== undefined || started.exitedEarly, 10_000, () => `the agent did not start:\n${started.log()}`);
    if (started.exitedEarly) throw new Error(`the agent exited:\n${started.log()}`);
    await until(async () => (await started.get('/healthz')).status === 200, 10_000, () => `the agent is not healthy:\n${started.log()}`);
    return started;
  }

  get exitedEarly(): boolean {
    return this.code !== undefined;
  }

  get port(): number | undefined {
    return this.lines.find((line) => line['msg'] === 'tcqos agent started')?.['port'] as number | undefined;
  }

  async get(path: string): Promise<{ status: number; text: string }> {
    try {
      const response = await fetch(`http://127.0.0.1:${this.port}${path}`);
      return { status: response.status, text: await response.text() };
    } catch (error) {
      return { status: 0, text: String(error) };
    }
  }

  /** The first log line with this message after `since` (ms since the epoch), if any. */
  logged(message: string, since = 0): Record<string, unknown> | undefined {
    return this.lines.find((line) => line['msg'] === message && (line['time'] as number) >= since);
  }

  log(): string {
    return this.lines.map((line) => JSON.stringify(line)).join('\n');
  }

  /** SIGTERM; resolves with the exit code (SIGKILL after 10 s). */
  async stop(): Promise<number | null> {
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, why: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(why());
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The configured rate of the egress HTB root class on the pod's eth0, bit/s (tc prints HTB classes as text even under -j). */
async function egressRootRate(): Promise<number> {
  const text = await must('ip', ['netns', 'exec', pod.netns, 'tc', 'class', 'show', 'dev', 'eth0']);
  const root = text.split('\n').find((line) => line.startsWith('class htb ') && line.includes(' root '));
  const rate = root === undefined ? undefined : classFromText(root).rate;
  if (rate === undefined) throw new Error(`no HTB root class on eth0: ${text}`);
  return rate;
}

/** Bytes the egress HTB qdisc on the pod's eth0 has sent. */
async function egressBytes(): Promise<number> {
  const qdiscs = JSON.parse(await must('ip', ['netns', 'exec', pod.netns, 'tc', '-s', '-j', 'qdisc', 'show', 'dev', 'eth0'])) as Array<{ kind: string; root?: boolean; bytes: number }>;
  return qdiscs.find((q) => q.kind === 'htb' && q.root)!.bytes;
}

/** Starts a TCP flow from the pod to the peer for `seconds`; resolves when it ends. */
function backgroundFlow(port: number, seconds: number): Promise<unknown> {
  const server = execa('ip', ['netns', 'exec', peer.netns, 'iperf3', '-s', '-1', '-p', String(port)], { reject: false, timeout: (seconds + 20) * 1000 });
  return (async () => {
    await until(async () => (await run('ip', ['netns', 'exec', peer.netns, 'ss', '-Htln', `sport = :${port}`])).stdout.trim() !== '', 5000, () => 'iperf3 server did not listen');
    await run('ip', ['netns', 'exec', pod.netns, 'iperf3', '-c', peer.ipv4, '-p', String(port), '-t', String(seconds)], { timeoutMs: (seconds + 15) * 1000 });
    server.kill('SIGKILL');
    await server;
  })();
}

beforeAll(async () => {
  await bed.removeLeftovers();
  runner = await bed.netns('runner');
  const hub = await bed.macvlanHub();
  pod = await bed.macvlanPod(hub, 'pod', 2);
  peer = await bed.macvlanPod(hub, 'peer', 3);
  stateDir = mkdtempSync(join(tmpdir(), 'tqagt-state-'));
  fake = await FakeApiServer.start();
  const annotations = { 'tcqos.io/policy': policy('40mbit'), 'kubernetes.io/egress-bandwidth': '60M' };
  fake.setPod({ ...POD, nodeName: NODE, annotations });
  fake.setPod({ namespace: 'shop', name: 'elsewhere', nodeName: 'tqagt-other', annotations: { 'tcqos.io/policy': policy('1mbit') } });
  // ADD as containerd does it for an annotated pod: the admin's cap in the conflist, the annotations in runtimeConfig
  const added = await invoke(runner, {
    command: 'ADD',
    containerId: CONTAINER,
    netns: pod.path,
    config: {
      cniVersion: '1.0.0',
      name: NETWORK,
      type: 'tcqos',
      egress: { rate: '100mbit' },
      capabilities: { bandwidth: true, 'io.kubernetes.cri.pod-annotations': true },
      runtimeConfig: { bandwidth: { EgressRate: 60_000_000, EgressBurst: 2 ** 32 - 1 }, 'io.kubernetes.cri.pod-annotations': annotations },
      prevResult: prevResultFor('1.0.0', pod.path),
    },
    extraEnv: { TCQOS_STATE_DIR: stateDir, CNI_ARGS: `K8S_POD_NAMESPACE=${POD.namespace};K8S_POD_NAME=${POD.name};K8S_POD_UID=${POD.uid}` },
  });
  expect(added.exitCode, `${added.stdout}${added.stderr}`).toBe(0);
  expect(await egressRootRate()).toBe(40_000_000);
});

afterAll(async () => {
  await prometheus?.stop();
  await agent?.stop();
  if (runner) {
    await invoke(runner, { command: 'DEL', containerId: CONTAINER, netns: pod.path, config: { cniVersion: '1.0.0', name: NETWORK, type: 'tcqos' }, extraEnv: { TCQOS_STATE_DIR: stateDir } });
  }
  await fake?.close();
  await bed.destroy();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

describe('tcqos agent on a live pod', () => {
  it('starts, lists and watches the pods of its node, and changes nothing that is already in force', async () => {
    agent = await AgentProcess.start();
    const [list] = fake.requestsTo('list');
    expect(list!.query['fieldSelector']).toBe(`spec.nodeName=${NODE}`);
    await new Promise((resolve) => setTimeout(resolve, 2500)); // a resync
    expect(agent.logged('applied the pod annotations')).toBeUndefined();
    // the record keeps the shaping annotations ADD saw (kubernetes.io/egress-bandwidth included), so a
    // start finds nothing to apply: not even a no-op derivation
    expect(agent.lines.filter((line) => line['msg'] === 'pod annotations already in force')).toHaveLength(0);
    expect(await egressRootRate()).toBe(40_000_000);
    expect(agent.lines.filter((line) => (line['level'] as number) >= 50)).toEqual([]);
    // stderr is JSON lines only, Node's own warnings included
    expect(agent.lines.filter((line) => String(line['msg']).startsWith('(not JSON)'))).toEqual([]);
  });

  it("an annotation edit changes a live flow's rate on the wire", async () => {
    const flow = backgroundFlow(5401, 8);
    await new Promise((resolve) => setTimeout(resolve, 2000)); // past slow start: a steady 40 Mbit/s
    // the HTB qdisc's byte counter, sampled as fast as tc runs, from 0.5 s before the edit to 1.5 s after
    const samples: Array<{ at: number; bytes: number }> = [];
    const sampleUntil = async (end: number) => {
      while (Date.now() < end) samples.push({ at: Date.now(), bytes: await egressBytes() });
    };
    await sampleUntil(Date.now() + 500);
    const editedAt = Date.now();
    fake.editAnnotations(POD.namespace, POD.name, { 'tcqos.io/policy': policy('10mbit') });
    await sampleUntil(editedAt + 1500);
    await flow;
    const WINDOW = 250;
    /** Mbit/s on the wire over the WINDOW ms starting at sample i. */
    const windowRate = (i: number, span = WINDOW): number | undefined => {
      const from = samples[i]!;
      const to = samples.find((s) => s.at >= from.at + span);
      return to && ((to.bytes - from.bytes) * 8) / ((to.at - from.at) / 1000) / 1e6;
    };
    const before = windowRate(0)!;
    // the first window wholly at the new rate (12 allows for the old rate's last few ms inside it)
    const first = samples.findIndex((s, i) => s.at >= editedAt && (windowRate(i) ?? Infinity) < 12);
    const applied = agent!.logged('applied the pod annotations', editedAt);
    expect(applied, agent!.log()).toBeDefined();
    expect(first, `the flow never dropped to the new rate: ${JSON.stringify(samples)}`).toBeGreaterThanOrEqual(0);
    // that window still holds a few ms at the old rate: where the rate changed, if it changed at one instant
    const changedAt = samples[first]!.at - editedAt + ((windowRate(first)! - 10) / (before - 10)) * WINDOW;
    console.info(
      `edit to wire: ${before.toFixed(1)} Mbit/s on the wire before the edit; the agent logged the new shaping applied ` +
        `${(applied!['time'] as number) - editedAt} ms after the edit; the ${WINDOW} ms window starting ${samples[first]!.at - editedAt} ms ` +
        `after the edit measures ${windowRate(first)!.toFixed(1)} Mbit/s (10 configured): the rate changed about ${changedAt.toFixed(0)} ms ` +
        `after the edit (${samples.length} samples, one every ${((samples[samples.length - 1]!.at - samples[0]!.at) / samples.length).toFixed(0)} ms)`,
    );
    expect(before).toBeGreaterThan(35);
    // a live change must not stall the flow (the measure: no 0.5 s with nothing sent). The
    // drop from 40 to 10 Mbit/s costs TCP a burst of losses, so a quarter second may dip below the
    // new rate; half a second carrying next to nothing is a stall.
    const stalled = samples.findIndex((s, i) => i > first && s.at <= editedAt + 1500 - 500 && (windowRate(i, 500) ?? Infinity) < 0.5);
    if (stalled >= 0) {
      const tc = await must('ip', ['netns', 'exec', pod.netns, 'tc', '-s', 'qdisc', 'show', 'dev', 'eth0']);
      throw new Error(`the flow stalled ${samples[stalled]!.at - editedAt} ms after the edit (${windowRate(stalled, 500)!.toFixed(2)} Mbit/s over 500 ms); tc -s qdisc:\n${tc}`);
    }
    expect(await egressRootRate()).toBe(10_000_000);
    expectShapedTo('egress after the edit', await goodputMbit({ podNetns: pod.netns, peerNetns: peer.netns, peerAddress: peer.ipv4, port: 5402, direction: 'egress' }), 10);
  });

  it('an invalid edit keeps the running shaping and posts a Warning Event on the pod', async () => {
    const before = fake.events.length;
    fake.editAnnotations(POD.namespace, POD.name, { 'tcqos.io/policy': '{"egress":{"rate":"fast"}}' });
    await until(() => fake.events.length > before, 10_000, () => `no Event posted:\n${agent!.log()}`);
    const event = fake.events[before]!;
    expect(event).toMatchObject({ type: 'Warning', reason: 'TcqosPolicyInvalid', involvedObject: { kind: 'Pod', namespace: POD.namespace, name: POD.name } });
    expect(event.message).toMatch(/^annotation tcqos\.io\/policy: egress\.rate: .*fast/);
    expect(await egressRootRate()).toBe(10_000_000);
    await new Promise((resolve) => setTimeout(resolve, 2500)); // a resync: no second attempt, no second Event
    expect(fake.events).toHaveLength(before + 1);
  });

  it('applies at start an edit made while it was down', async () => {
    expect(await agent!.stop()).toBe(0);
    agent = undefined;
    fake.editAnnotations(POD.namespace, POD.name, { 'tcqos.io/policy': policy('20mbit') });
    agent = await AgentProcess.start();
    await until(async () => (await egressRootRate()) === 20_000_000, 10_000, () => `not applied after the restart:\n${agent!.log()}`);
    expectShapedTo('egress after the restart', await goodputMbit({ podNetns: pod.netns, peerNetns: peer.netns, peerAddress: peer.ipv4, port: 5403, direction: 'egress' }), 20);
  });

  it("serves the class counters to Prometheus: a query returns the default class's byte rate", async () => {
    prometheus = await startPrometheus([{ job: 'tcqos-agent', targets: [`127.0.0.1:${agent!.port}`] }]);
    const flow = backgroundFlow(5404, 8);
    const series = await prometheus.waitForSeries('rate(tcqos_class_bytes_total{class="default",direction="egress"}[5s])', {
      until: (found) => found.some((s) => s.value > 0),
    });
    await flow;
    const [rate] = series;
    console.info(`Prometheus: rate(tcqos_class_bytes_total{class="default",direction="egress"}[5s]) = ${(rate!.value * 8) / 1e6} Mbit/s`);
    expect(rate!.labels).toMatchObject({ pod_namespace: POD.namespace, pod: POD.name, interface: 'eth0', container_id: CONTAINER });
    expect(rate!.value * 8).toBeLessThan(20_000_000 * 1.1);
    const own = await prometheus.query('tcqos_agent_reconciles_total{result="applied"}');
    expect(own[0]!.value).toBeGreaterThanOrEqual(1);
  });
});
