/**
 * The agent end to end in-process, against the fake API server, with a fake node behind the
 * injected dependencies (registry, update use case, stats): which edits are applied and how often,
 * refusals as Events, start-up reconciliation, retries, /healthz and /metrics.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startAgent, type RunningAgent } from '../../src/agent/agent.ts';
import type { AgentDeps, AttachmentRef, AttachmentView, PodInputs } from '../../src/agent/deps.ts';
import { loadKubeConfig, podApi } from '../../src/agent/kube.ts';
import type { AgentSettings } from '../../src/agent/settings.ts';
import type { AttachmentStats } from '../../src/attachment/stats.ts';
import { AdmissionError } from '../../src/attachment/errors.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { runtimeFromAnnotations } from '../../src/config/kubernetes-bandwidth.ts';
import type { Logger } from '../../src/log.ts';
import { FakeApiServer } from '../helpers/fake-apiserver.ts';

const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };
const NODE = 'node-a';
const POLICY_10M = '{"egress":{"rate":"10mbit"}}';
const POLICY_5M = '{"egress":{"rate":"5mbit"}}';

async function eventually(check: () => void | Promise<void>, timeoutMs = 4000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The node as the agent sees it through AgentDeps: registry records, the update use case (which
 * refuses a policy annotation that is not JSON, as derivePolicy refuses an invalid one, and one
 * above `uplinkLeft` as admission does), dropped records, one attachment's stats.
 */
class FakeNode implements AgentDeps {
  records: AttachmentView[] = [];
  readonly applies: Array<{ readonly ref: AttachmentRef; readonly inputs: PodInputs }> = [];
  /** Records whose netns is gone: dropGone removes and returns them. */
  gone: AttachmentView[] = [];
  /** Applies fail (not a config error) while this is above 0, counting down. */
  failures = 0;
  /** bit/s an uplink has left for an egress rate asked in a policy annotation. */
  uplinkLeft = Infinity;

  attach(namespace: string, name: string, containerId: string, options: { ifname?: string; uid?: string; annotations?: Record<string, string> } = {}): void {
    this.records.push({
      containerId,
      ifname: options.ifname ?? 'eth0',
      network: 'macvlan',
      pod: { namespace, name, ...(options.uid ? { uid: options.uid } : {}) },
      ...(options.annotations ? { annotations: options.annotations } : {}),
    });
  }

  appliesTo(containerId: string): PodInputs[] {
    return this.applies.filter((apply) => apply.ref.containerId === containerId).map((apply) => apply.inputs);
  }

  findByPod(namespace: string, name: string): AttachmentView[] {
    return this.records.filter((record) => record.pod?.namespace === namespace && record.pod.name === name);
  }

  dropGone(): AttachmentView[] {
    const gone = this.gone;
    this.records = this.records.filter((record) => !gone.includes(record));
    this.gone = [];
    return gone;
  }

  async applyPodInputs(ref: AttachmentRef, inputs: PodInputs): Promise<{ changed: boolean }> {
    this.applies.push({ ref, inputs });
    if (this.failures > 0) {
      this.failures -= 1;
      throw new Error('tc: RTNETLINK answers: No buffer space available');
    }
    const policy = inputs.annotations?.['tcqos.io/policy'];
    if (policy !== undefined) {
      let parsed: { egress?: { rate?: string } };
      try {
        parsed = JSON.parse(policy) as typeof parsed;
      } catch {
        throw new ConfigError('', `${JSON.stringify(policy)} is not JSON`, 'annotation tcqos.io/policy');
      }
      const asked = Number.parseInt(parsed.egress?.rate ?? '0', 10) * 1e6;
      if (asked > this.uplinkLeft) throw new AdmissionError('eth9', 100e6, 'egress', 100e6 - this.uplinkLeft, asked);
    }
    return { changed: true };
  }

  runtimeFromAnnotations = runtimeFromAnnotations;

  async collectStats(): Promise<AttachmentStats[]> {
    const counters = { bytes: 123_456, packets: 100, drops: 1, overlimits: 2, backlogBytes: 0 };
    return [
      {
        containerId: 'c-web',
        ifname: 'eth0',
        netns: '/var/run/netns/web',
        network: 'macvlan',
        pod: { namespace: 'shop', name: 'web' },
        directions: [
          { direction: 'egress', device: 'eth0', rate: 10_000_000, ceil: 10_000_000, ...counters, classes: [{ name: 'default', classId: '1:10', rate: 10_000_000, ceil: 10_000_000, ...counters }] },
        ],
      },
    ];
  }
}

describe('the agent', { timeout: 15_000 }, () => {
  let fake: FakeApiServer;
  let node: FakeNode;
  let dir: string;
  let agent: RunningAgent | undefined;

  beforeEach(async () => {
    fake = await FakeApiServer.start();
    node = new FakeNode();
    dir = mkdtempSync(join(tmpdir(), 'tcqos-agent-'));
    fake.writeKubeconfig(join(dir, 'kubeconfig'));
  });

  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(overrides: Partial<AgentSettings> = {}): Promise<RunningAgent> {
    const settings: AgentSettings = {
      node: NODE,
      listen: { host: '127.0.0.1', port: 0 },
      stateDir: dir,
      logLevel: 'silent',
      relistBackoff: { initialSeconds: 0.05, maxSeconds: 0.5 },
      resyncSeconds: 0.2,
      gcSeconds: 0.2,
      watchTimeoutSeconds: 300,
      ...overrides,
    };
    agent = await startAgent(settings, podApi(loadKubeConfig(join(dir, 'kubeconfig'), {}), NODE), node, quiet);
    return agent;
  }

  async function started(overrides: Partial<AgentSettings> = {}): Promise<RunningAgent> {
    const running = await start(overrides);
    await eventually(() => expect(running.health().ok).toBe(true));
    await running.idle();
    return running;
  }

  async function get(running: RunningAgent, path: string): Promise<{ status: number; text: string; type: string | null }> {
    const response = await fetch(`http://127.0.0.1:${running.address.port}${path}`);
    return { status: response.status, text: await response.text(), type: response.headers.get('content-type') };
  }

  async function metric(running: RunningAgent, series: string): Promise<number> {
    const { text } = await get(running, '/metrics');
    const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
    return Number(line?.slice(series.length + 1));
  }

  /** Long enough for a few resyncs and record sweeps (every 0.2 s here). */
  const severalResyncs = () => sleep(700);

  it("applies an annotation edit to each of the pod's attachments once, with its shaping annotations and runtime values", async () => {
    fake.setPod({ namespace: 'shop', name: 'web', nodeName: NODE, annotations: { 'tcqos.io/policy': POLICY_10M } });
    node.attach('shop', 'web', 'c-web', { annotations: { 'tcqos.io/policy': POLICY_10M } });
    node.attach('shop', 'web', 'c-web', { ifname: 'net1', annotations: { 'tcqos.io/policy': POLICY_10M } });
    const running = await started();
    expect(node.applies).toEqual([]); // what ADD applied is in force: nothing to do

    fake.editAnnotations('shop', 'web', { 'tcqos.io/policy': POLICY_5M, 'kubernetes.io/egress-bandwidth': '8M', 'example.com/owner': 'team' });
    await eventually(() => expect(node.applies).toHaveLength(2));
    const inputs = {
      annotations: { 'kubernetes.io/egress-bandwidth': '8M', 'tcqos.io/policy': POLICY_5M },
      runtime: { egressRate: 8_000_000, egressBurst: 2 ** 32 - 1 },
    };
    expect(node.applies).toEqual([
      { ref: { containerId: 'c-web', ifname: 'eth0' }, inputs },
      { ref: { containerId: 'c-web', ifname: 'net1' }, inputs },
    ]);

    // resyncs, status updates, an unrelated annotation, a resumed watch, a relist: nothing more
    fake.touchPod('shop', 'web');
    fake.editAnnotations('shop', 'web', { 'example.com/owner': 'other-team' });
    fake.closeWatches();
    await severalResyncs();
    fake.expireHistory();
    await eventually(() => expect(fake.requestsTo('list')).toHaveLength(2));
    await severalResyncs();
    await running.idle();
    expect(node.applies).toHaveLength(2);
    expect(await metric(running, 'tcqos_agent_reconciles_total{result="applied"}')).toBe(2);
  });

  it('applies at start what was edited while it was down, and nothing else', async () => {
    // in force per the records: web and api as annotated now; db as annotated before an edit
    fake.setPod({ namespace: 'shop', name: 'web', nodeName: NODE, annotations: { 'tcqos.io/policy': POLICY_10M } });
    node.attach('shop', 'web', 'c-web', { annotations: { 'tcqos.io/policy': POLICY_10M } });
    fake.setPod({ namespace: 'shop', name: 'api', nodeName: NODE });
    node.attach('shop', 'api', 'c-api');
    fake.setPod({ namespace: 'shop', name: 'db', nodeName: NODE, annotations: { 'tcqos.io/policy.macvlan': POLICY_5M } });
    node.attach('shop', 'db', 'c-db', { annotations: { 'tcqos.io/policy': POLICY_10M } });
    fake.setPod({ namespace: 'shop', name: 'batch', nodeName: NODE, annotations: { 'tcqos.io/policy': POLICY_5M } }); // no attachment yet
    fake.setPod({ namespace: 'shop', name: 'remote', nodeName: 'node-b', annotations: { 'tcqos.io/policy': POLICY_5M } });
    node.attach('shop', 'remote', 'c-remote'); // (a record of another node's pod cannot happen; it shows the selector is used)

    await started();
    expect(node.applies).toEqual([{ ref: { containerId: 'c-db', ifname: 'eth0' }, inputs: { annotations: { 'tcqos.io/policy.macvlan': POLICY_5M } } }]);
  });

  it('reports an invalid annotation as a Warning Event on the pod, keeps the shaping, and does not try it again until it changes', async () => {
    fake.setPod({ namespace: 'shop', name: 'web', nodeName: NODE, uid: 'uid-web', annotations: { 'tcqos.io/policy': POLICY_10M } });
    node.attach('shop', 'web', 'c-web', { annotations: { 'tcqos.io/policy': POLICY_10M } });
    node.attach('shop', 'web', 'c-web', { ifname: 'net1', annotations: { 'tcqos.io/policy': POLICY_10M } });
    const running = await started();

    fake.editAnnotations('shop', 'web', { 'tcqos.io/policy': '{"egress": fast}' });
    await eventually(() => expect(fake.events).toHaveLength(1));
    const [event] = fake.events;
    expect(event).toMatchObject({
      metadata: { namespace: 'shop' },
      involvedObject: { kind: 'Pod', namespace: 'shop', name: 'web', uid: 'uid-web' },
      reason: 'TcqosPolicyInvalid',
      type: 'Warning',
      source: { component: 'tcqos-agent', host: NODE },
      count: 1,
    });
    // one Event for the pod, though both attachments refused it
    expect(event!.message).toBe('annotation tcqos.io/policy: "{\\"egress\\": fast}" is not JSON; the running shaping is kept');
    expect(event!.metadata.name).toMatch(/^web\./);
    expect(node.applies).toHaveLength(2);

    fake.touchPod('shop', 'web');
    await severalResyncs();
    fake.expireHistory();
    await severalResyncs();
    await running.idle();
    expect(node.applies).toHaveLength(2);
    expect(fake.events).toHaveLength(1);
    expect(await metric(running, 'tcqos_agent_reconciles_total{result="invalid"}')).toBe(2);

    fake.editAnnotations('shop', 'web', { 'tcqos.io/policy': POLICY_5M });
    await eventually(() => expect(node.applies).toHaveLength(4));
    expect(node.applies[3]!.inputs).toEqual({ annotations: { 'tcqos.io/policy': POLICY_5M } });
    expect(fake.events).toHaveLength(1);
  });

  it('reports an invalid annotation again when it comes back after a valid one', async () => {
    fake.setPod({ namespace: 'shop', name: 'web', nodeName: NODE });
    node.attach('shop', 'web', 'c-web');
    await started();
    for (const [i, value] of ['nope', POLICY_5M, 'nope'].entries()) {
      fake.editAnnotations('shop', 'web', { 'tcqos.io/policy': value });
      await eventually(() => expect(node.applies).toHaveLength(i + 1));
    }
    await eventually(() => expect(fake.events).toHaveLength(2));
  });

  it('reports a policy the uplink cannot admit as an Event once, and applies it at a resync when room is made', async () => {
    fake.setPod({ namespace: 'shop', name: 'web', nodeName: NODE });
    node.attach('shop', 'web', 'c-web');
    const running = await started();
    node.uplinkLeft = 20e6;
    fake.editAnnotations('shop', 'web', { 'tcqos.io/policy': '{"egress":{"rate":"30mbit"}}' });
    await eventually(() => expect(fake.events).toHaveLength(1));
    expect(fake.events[0]).toMatchObject({ reason: 'TcqosPolicyNotAdmitted', type: 'Warning' });
    expect(fake.events[0]!.message).toMatch(/^uplink eth9 \(capacity 100mbit\) cannot guarantee 30mbit of egress: .*; the running shaping is kept$/);
    await severalResyncs();
    expect(node.applies.length).toBeGreaterThanOrEqual(3); // tried again at each resync
    expect(fake.events).toHaveLength(1); // reported once
    node.uplinkLeft = Infinity; // another pod left
    await eventually(() => expect(running.health().ok).toBe(true));
    await eventually(async () => expect(await metric(running, 'tcqos_agent_reconciles_total{result="applied"}')).toBe(1));
    const tries = node.applies.length;
    await severalResyncs();
    expect(node.applies).toHaveLength(tries);
    expect(await metric(running, 'tcqos_agent_reconciles_total{result="not_admitted"}')).toBe(tries - 1);
  });

  it('reports an invalid kubernetes.io bandwidth annotation the same way, without calling the use case', async () => {
    fake.setPod({ namespace: 'shop', name: 'web', nodeName: NODE });
    node.attach('shop', 'web', 'c-web');
    await started();
    fake.editAnnotations('shop', 'web', { 'kubernetes.io/ingress-bandwidth': 'fast' });
    await eventually(() => expect(fake.events).toHaveLength(1));
    expect(fake.events[0]!.message).toMatch(/^annotation kubernetes\.io\/ingress-bandwidth: "fast" is not a Kubernetes quantity/);
    expect(node.applies).toEqual([]);
  });

  it('retries a failed apply at the next resync until it succeeds', async () => {
    fake.setPod({ namespace: 'shop', name: 'web', nodeName: NODE });
    node.attach('shop', 'web', 'c-web');
    const running = await started();
    node.failures = 2;
    fake.editAnnotations('shop', 'web', { 'tcqos.io/policy': POLICY_5M });
    await eventually(() => expect(node.applies).toHaveLength(3));
    await severalResyncs();
    await running.idle();
    expect(node.applies).toHaveLength(3);
    expect(await metric(running, 'tcqos_agent_errors_total{kind="apply"}')).toBe(2);
    expect(await metric(running, 'tcqos_agent_reconciles_total{result="failed"}')).toBe(2);
    expect(await metric(running, 'tcqos_agent_reconciles_total{result="applied"}')).toBe(1);
    expect(fake.events).toEqual([]);
  });

  it('after a relist (410 Gone) applies only the pods edited meanwhile', async () => {
    for (const name of ['web', 'api']) {
      fake.setPod({ namespace: 'shop', name, nodeName: NODE });
      node.attach('shop', name, `c-${name}`);
    }
    const running = await started();
    fake.expireHistory();
    fake.editAnnotations('shop', 'api', { 'kubernetes.io/egress-bandwidth': '1G' });
    await eventually(() => expect(fake.requestsTo('list')).toHaveLength(2));
    await eventually(() => expect(node.applies).toHaveLength(1));
    await severalResyncs();
    await running.idle();
    expect(node.applies).toEqual([{ ref: { containerId: 'c-api', ifname: 'eth0' }, inputs: { annotations: { 'kubernetes.io/egress-bandwidth': '1G' }, runtime: { egressRate: 1e9, egressBurst: 2 ** 32 - 1 } } }]);
  });

  it("takes a pod recreated under the same name for a new pod, and skips the old pod's records", async () => {
    fake.setPod({ namespace: 'shop', name: 'web', nodeName: NODE, uid: 'uid-1', annotations: { 'tcqos.io/policy': POLICY_10M } });
    node.attach('shop', 'web', 'c-old', { uid: 'uid-1', annotations: { 'tcqos.io/policy': POLICY_10M } });
    const running = await started();
    fake.deletePod('shop', 'web');
    fake.setPod({ namespace: 'shop', name: 'web', nodeName: NODE, uid: 'uid-2', annotations: { 'tcqos.io/policy': POLICY_5M } });
    await severalResyncs();
    await running.idle();
    expect(node.applies).toEqual([]); // c-old is uid-1's: its sandbox is being torn down
    node.attach('shop', 'web', 'c-new', { uid: 'uid-2', annotations: { 'tcqos.io/policy': POLICY_10M } });
    await eventually(() => expect(node.appliesTo('c-new')).toHaveLength(1)); // at the next resync
    expect(node.applies).toHaveLength(1);
  });

  it('drops the records of gone namespaces on start and periodically', async () => {
    fake.setPod({ namespace: 'shop', name: 'web', nodeName: NODE });
    node.attach('shop', 'web', 'c-gone-early');
    node.gone = [...node.records];
    await started();
    expect(node.records).toEqual([]);
    node.attach('shop', 'web', 'c-gone-later');
    node.gone = [...node.records];
    await eventually(() => expect(node.records).toEqual([]));
  });

  it('answers /healthz 503 until the pods are listed and watched, then 200; /metrics has its own and the per-class families', async () => {
    fake.setPod({ namespace: 'shop', name: 'web', nodeName: NODE });
    fake.failNext({ status: 500 }, { status: 500 });
    const running = await start({ relistBackoff: { initialSeconds: 0.3, maxSeconds: 1 } });
    const before = await get(running, '/healthz');
    expect(before.status).toBe(503);
    expect(before.text).toMatch(/node-a/);
    await eventually(async () => expect((await get(running, '/healthz')).status).toBe(200));

    const { status, text, type } = await get(running, '/metrics');
    expect(status).toBe(200);
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const family of ['tcqos_agent_reconciles_total', 'tcqos_agent_errors_total', 'tcqos_agent_apply_seconds', 'tcqos_agent_watch_restarts_total', 'tcqos_class_bytes_total']) {
      expect(text).toContain(`# TYPE ${family} `);
    }
    expect(text).toContain('tcqos_agent_errors_total{kind="list"} 2');
    expect(text).toMatch(/^tcqos_class_bytes_total\{[^}]*class="default"[^}]*\} 123456$/m);
    expect((await get(running, '/elsewhere')).status).toBe(404);
  });
});
