/**
 * The agent as a controller, in-process, against the fake API server, with a fake node behind the
 * injected dependencies (registry, the converging use case, stats): edits applied once, drift
 * healed at a resync with an Event and a metric, refusals as Events, failures retried per pod with
 * back-off, a slow pod never holding up the others, never two workers on one pod, the registry
 * read once per pass, /healthz, /metrics from a background snapshot, and /metrics behind
 * TokenReview and SubjectAccessReview.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startAgent, type RunningAgent } from '../../src/agent/agent.ts';
import type { AgentDeps, AttachmentRef, AttachmentView, Converged, PodInputs } from '../../src/agent/deps.ts';
import { kubeApi } from '../../src/agent/kube.ts';
import { loadKubeConfig } from '../../src/agent/kubeconfig.ts';
import type { AgentSettings } from '../../src/agent/settings.ts';
import type { StatsReading } from '../../src/attachment/stats.ts';
import { AdmissionError, AttachmentNotFoundError } from '../../src/attachment/errors.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { runtimeFromAnnotations } from '../../src/config/kubernetes-bandwidth.ts';
import type { Logger } from '../../src/log.ts';
import { agentGet, type Answer } from '../helpers/agent-client.ts';
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
const keyOf = (ref: AttachmentRef) => `${ref.containerId}/${ref.ifname}`;

/**
 * The node as the agent sees it through AgentDeps. Each attachment's "kernel" holds the inputs last
 * converged on; `drift` marks an attachment changed by hand. Converging compares and reports what
 * changed, as the real use case does; it refuses a policy annotation that is not JSON (as
 * derivePolicy refuses an invalid one) and one above `uplinkLeft` (as admission does).
 */
class FakeNode implements AgentDeps {
  records: AttachmentView[] = [];
  /** Every converge call, in order. */
  readonly applies: Array<{ readonly ref: AttachmentRef; readonly inputs: PodInputs; readonly at: number }> = [];
  /** Converges on the record's own inputs (after a refusal). */
  readonly keeps: AttachmentRef[] = [];
  /** The inputs in force per attachment (JSON of the shaping annotations). */
  readonly kernel = new Map<string, string>();
  /** Attachments changed by hand since their last converge. */
  readonly drift = new Set<string>();
  /** Records whose netns is gone: dropGone removes and returns them. */
  gone: AttachmentView[] = [];
  /** Converges fail (not a config error) while this is above 0, counting down. */
  failures = 0;
  /** bit/s an uplink has left for an egress rate asked in a policy annotation. */
  uplinkLeft = Infinity;
  /** Converges of these containers wait until released. */
  readonly holds = new Map<string, Promise<void>>();
  running = 0;
  maxRunning = 0;
  /** Converges running per attachment right now, and the most ever at once on one. */
  readonly runningOn = new Map<string, number>();
  maxOnOne = 0;
  listings = 0;
  statsReads = 0;
  unreadable: StatsReading['unreadable'] = [];

  attach(namespace: string, name: string, containerId: string, options: { ifname?: string; uid?: string; annotations?: Record<string, string>; site?: 'pod' | 'host' } = {}): void {
    const record: AttachmentView = {
      containerId,
      ifname: options.ifname ?? 'eth0',
      network: 'macvlan',
      pod: { namespace, name, ...(options.uid ? { uid: options.uid } : {}) },
      site: options.site ?? 'pod',
    };
    this.records.push(record);
    this.kernel.set(keyOf(record), JSON.stringify(options.annotations ?? {}));
  }

  hold(containerId: string): () => void {
    let release!: () => void;
    this.holds.set(containerId, new Promise((resolve) => (release = resolve)));
    return () => {
      this.holds.delete(containerId);
      release();
    };
  }

  /** The converges that changed the policy in force. */
  get changes(): Array<{ readonly ref: AttachmentRef; readonly inputs: PodInputs }> {
    return this.changed;
  }

  private readonly changed: Array<{ readonly ref: AttachmentRef; readonly inputs: PodInputs }> = [];

  listAttachments(): AttachmentView[] {
    this.listings++;
    return [...this.records];
  }

  async dropGone(): Promise<AttachmentView[]> {
    const gone = this.gone;
    this.records = this.records.filter((record) => !gone.includes(record));
    this.gone = [];
    return gone;
  }

  async applyPodInputs(ref: AttachmentRef, inputs: PodInputs): Promise<Converged> {
    this.applies.push({ ref, inputs, at: Date.now() });
    return this.converging(ref, async () => {
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
        if (asked > this.uplinkLeft) throw new AdmissionError({ name: 'eth9', capacity: 100e6 }, 'egress', 100e6 - this.uplinkLeft, asked);
      }
      const wanted = JSON.stringify(inputs.annotations ?? {});
      const policyChanged = this.kernel.get(keyOf(ref)) !== wanted;
      if (policyChanged) this.changed.push({ ref, inputs });
      this.kernel.set(keyOf(ref), wanted);
      return this.settle(ref, policyChanged);
    });
  }

  async keepInForce(ref: AttachmentRef): Promise<Converged> {
    this.keeps.push(ref);
    return this.converging(ref, async () => this.settle(ref, false));
  }

  runtimeFromAnnotations = runtimeFromAnnotations;

  async readStats(): Promise<StatsReading> {
    this.statsReads++;
    const counters = { bytes: 123_456, packets: 100, drops: 1, overlimits: 2, backlogBytes: 0 };
    return {
      stats: [
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
      ],
      unreadable: this.unreadable,
    };
  }

  private settle(ref: AttachmentRef, policyChanged: boolean): Converged {
    const drifted = this.drift.delete(keyOf(ref));
    const changed = policyChanged || drifted;
    return { changed, policyChanged, commands: changed ? [`class add dev ${ref.ifname} parent 7c05:1 classid 7c05:10 htb rate 10Mbit`] : [] };
  }

  private async converging<T>(ref: AttachmentRef, work: () => Promise<T>): Promise<T> {
    if (!this.records.some((record) => keyOf(record) === keyOf(ref))) throw new AttachmentNotFoundError(ref, '/run/tcqos');
    const key = keyOf(ref);
    this.running++;
    this.runningOn.set(key, (this.runningOn.get(key) ?? 0) + 1);
    this.maxRunning = Math.max(this.maxRunning, this.running);
    this.maxOnOne = Math.max(this.maxOnOne, this.runningOn.get(key)!);
    try {
      await this.holds.get(ref.containerId);
      return await work();
    } finally {
      this.running--;
      this.runningOn.set(key, this.runningOn.get(key)! - 1);
    }
  }
}

describe('the agent', { timeout: 20_000 }, () => {
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
      workers: 4,
      retryBackoff: { initialSeconds: 0.05, maxSeconds: 2 },
      metricsRefreshSeconds: 0.1,
      metricsAuth: 'none',
      ...overrides,
    };
    const { config, source } = loadKubeConfig(join(dir, 'kubeconfig'), {});
    agent = await startAgent(settings, kubeApi(config, source, NODE), node, quiet);
    return agent;
  }

  async function started(overrides: Partial<AgentSettings> = {}): Promise<RunningAgent> {
    const running = await start(overrides);
    await eventually(() => expect(running.health().ok).toBe(true));
    await running.idle();
    return running;
  }

  function get(running: RunningAgent, path: string, token?: string): Promise<Answer> {
    return agentGet({ scheme: running.scheme, host: '127.0.0.1', port: running.address.port, ...(running.certificate ? { ca: running.certificate } : {}) }, path, token ? { token } : {});
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
    expect(node.changes).toEqual([]); // what ADD applied is in force: nothing to change

    fake.editAnnotations('shop', 'web', { 'tcqos.io/policy': POLICY_5M, 'kubernetes.io/egress-bandwidth': '8M', 'example.com/owner': 'team' });
    await eventually(() => expect(node.changes).toHaveLength(2));
    const inputs = {
      annotations: { 'kubernetes.io/egress-bandwidth': '8M', 'tcqos.io/policy': POLICY_5M },
      runtime: { egressRate: 8_000_000, egressBurst: 2 ** 32 - 1 },
    };
    expect(node.changes).toEqual([
      { ref: { containerId: 'c-web', ifname: 'eth0' }, inputs },
      { ref: { containerId: 'c-web', ifname: 'net1' }, inputs },
    ]);

    // resyncs, status updates, an unrelated annotation, a resumed watch, a relist: converged, nothing changed
    fake.touchPod('shop', 'web');
    fake.editAnnotations('shop', 'web', { 'example.com/owner': 'other-team' });
    fake.closeWatches();
    await severalResyncs();
    fake.expireHistory();
    await eventually(() => expect(fake.requestsTo('list')).toHaveLength(2));
    await severalResyncs();
    await running.idle();
    expect(node.changes).toHaveLength(2);
    expect(node.applies.length).toBeGreaterThan(6); // every resync compares again
    expect(await metric(running, 'tcqos_agent_reconciles_total{result="applied"}')).toBe(2);
    expect(await metric(running, 'tcqos_agent_reconciles_total{result="healed"}')).toBe(0);
    expect(fake.events).toEqual([]);
  });

  it('applies at start what was edited while it was down, and changes nothing else', async () => {
    // in force per the kernel: web and api as annotated now; db as annotated before an edit
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
    expect(node.changes).toEqual([{ ref: { containerId: 'c-db', ifname: 'eth0' }, inputs: { annotations: { 'tcqos.io/policy.macvlan': POLICY_5M } } }]);
    expect(node.applies.map((apply) => apply.ref.containerId)).not.toContain('c-remote');
  });

  it('restores an attachment changed by hand within one resync, with a Warning Event naming the tc changes and a metric, once per heal', async () => {
    fake.setPod({ namespace: 'shop', name: 'web', nodeName: NODE, uid: 'uid-web', annotations: { 'tcqos.io/policy': POLICY_10M } });
    node.attach('shop', 'web', 'c-web', { annotations: { 'tcqos.io/policy': POLICY_10M } });
    const running = await started({ resyncSeconds: 0.5 });
    await severalResyncs();
    expect(fake.events).toEqual([]);

    node.drift.add('c-web/eth0'); // someone deleted a class
    const driftedAt = Date.now();
    await eventually(() => expect(fake.events).toHaveLength(1), 2000);
    expect(Date.now() - driftedAt).toBeLessThan(500 + 300);
    expect(fake.events[0]).toMatchObject({
      type: 'Warning',
      reason: 'TcqosDriftHealed',
      involvedObject: { kind: 'Pod', namespace: 'shop', name: 'web', uid: 'uid-web' },
    });
    expect(fake.events[0]!.message).toBe(
      'the shaping of eth0 (network macvlan) was changed outside tcqos and has been restored to its policy with 1 tc change: class add dev eth0 parent 7c05:1 classid 7c05:10 htb rate 10Mbit',
    );
    expect(await metric(running, 'tcqos_agent_drift_healed_total')).toBe(1);
    expect(await metric(running, 'tcqos_agent_reconciles_total{result="healed"}')).toBe(1);
    await severalResyncs();
    expect(fake.events).toHaveLength(1);
    expect(node.changes).toEqual([]); // the policy never changed

    node.drift.add('c-web/eth0'); // again: a second heal, a second Event
    await eventually(() => expect(fake.events).toHaveLength(2), 2000);
    expect(await metric(running, 'tcqos_agent_drift_healed_total')).toBe(2);
  });

  it('finishes the pods being converged when stopped, their Events included', async () => {
    fake.setPod({ namespace: 'shop', name: 'web', nodeName: NODE });
    node.attach('shop', 'web', 'c-web');
    const running = await started({ resyncSeconds: 0.1 });
    fake.eventDelayMs = 300;
    const release = node.hold('c-web');
    node.drift.add('c-web/eth0');
    await eventually(() => expect(node.running).toBe(1));
    const stopping = running.stop();
    agent = undefined;
    await sleep(50);
    release();
    await stopping;
    expect(fake.events.map((event) => event.reason)).toEqual(['TcqosDriftHealed']);
    expect(fake.requestsTo('event')).toHaveLength(1);
  });

  it('reports an invalid annotation as a Warning Event once, keeps the running shaping converged (healing it too), and applies a valid edit', async () => {
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

    fake.touchPod('shop', 'web');
    await severalResyncs();
    fake.expireHistory();
    await severalResyncs();
    await running.idle();
    expect(fake.events).toHaveLength(1);
    expect(node.changes).toEqual([]);
    expect(node.keeps.length).toBeGreaterThanOrEqual(4); // the running shaping is still converged on
    node.drift.add('c-web/net1');
    await eventually(() => expect(fake.events.map((posted) => posted.reason)).toEqual(['TcqosPolicyInvalid', 'TcqosDriftHealed']));
    expect(await metric(running, 'tcqos_agent_drift_healed_total')).toBe(1);

    fake.editAnnotations('shop', 'web', { 'tcqos.io/policy': POLICY_5M });
    await eventually(() => expect(node.changes).toHaveLength(2));
    expect(node.changes[1]!.inputs).toEqual({ annotations: { 'tcqos.io/policy': POLICY_5M } });
    expect(fake.events).toHaveLength(2);
  });

  it('reports an invalid annotation again when it comes back after a valid one', async () => {
    fake.setPod({ namespace: 'shop', name: 'web', nodeName: NODE });
    node.attach('shop', 'web', 'c-web');
    await started();
    fake.editAnnotations('shop', 'web', { 'tcqos.io/policy': 'nope' });
    await eventually(() => expect(fake.events).toHaveLength(1));
    fake.editAnnotations('shop', 'web', { 'tcqos.io/policy': POLICY_5M });
    await eventually(() => expect(node.changes).toHaveLength(1));
    fake.editAnnotations('shop', 'web', { 'tcqos.io/policy': 'nope' });
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
    expect(fake.events).toHaveLength(1); // reported once
    node.uplinkLeft = Infinity; // another pod left
    await eventually(() => expect(node.changes).toHaveLength(1));
    expect(await metric(running, 'tcqos_agent_reconciles_total{result="applied"}')).toBe(1);
    expect(await metric(running, 'tcqos_agent_reconciles_total{result="not_admitted"}')).toBeGreaterThanOrEqual(2);
  });

  it('reports an invalid kubernetes.io bandwidth annotation the same way, without trying to apply it', async () => {
    fake.setPod({ namespace: 'shop', name: 'web', nodeName: NODE });
    node.attach('shop', 'web', 'c-web');
    await started();
    const before = node.applies.length;
    fake.editAnnotations('shop', 'web', { 'kubernetes.io/ingress-bandwidth': 'fast' });
    await eventually(() => expect(fake.events).toHaveLength(1));
    expect(fake.events[0]!.message).toMatch(/^annotation kubernetes\.io\/ingress-bandwidth: "fast" is not a Kubernetes quantity/);
    expect(node.applies).toHaveLength(before);
    expect(node.keeps.length).toBeGreaterThanOrEqual(1);
  });

  it('retries a failed pod with its own doubling back-off, not at the next resync', async () => {
    fake.setPod({ namespace: 'shop', name: 'web', nodeName: NODE });
    node.attach('shop', 'web', 'c-web');
    const running = await started({ resyncSeconds: 60, retryBackoff: { initialSeconds: 0.1, maxSeconds: 10 } });
    node.failures = 3;
    fake.editAnnotations('shop', 'web', { 'tcqos.io/policy': POLICY_5M });
    await eventually(() => expect(node.changes).toHaveLength(1), 3000);
    const tries = node.applies.slice(-4).map((apply) => apply.at);
    const gaps = tries.slice(1).map((at, i) => at - tries[i]!);
    // 100, 200, 400 ms
    for (const [i, gap] of gaps.entries()) {
      expect(gap).toBeGreaterThanOrEqual(100 * 2 ** i - 5);
      expect(gap).toBeLessThan(100 * 2 ** i + 150);
    }
    expect(await metric(running, 'tcqos_agent_errors_total{kind="apply"}')).toBe(3);
    expect(await metric(running, 'tcqos_agent_retries_total')).toBe(3);
    expect(await metric(running, 'tcqos_agent_reconciles_total{result="failed"}')).toBe(3);
    expect(fake.events).toEqual([]);

    // success forgets the failures: the next failure waits the first step again
    node.failures = 1;
    fake.editAnnotations('shop', 'web', { 'tcqos.io/policy': POLICY_10M });
    await eventually(() => expect(node.changes).toHaveLength(2), 3000);
    const [failed, retried] = node.applies.slice(-2).map((apply) => apply.at);
    expect(retried! - failed!).toBeLessThan(100 + 150);
  });

  it('goes on with other pods while one hangs, never runs two workers on one pod, and converges a pod edited meanwhile on its latest state', async () => {
    for (const name of ['slow', 'a', 'b']) {
      fake.setPod({ namespace: 'shop', name, nodeName: NODE });
      node.attach('shop', name, `c-${name}`);
    }
    await started({ resyncSeconds: 0.1 });
    const release = node.hold('c-slow');
    fake.editAnnotations('shop', 'slow', { 'tcqos.io/policy': POLICY_10M });
    await sleep(100);
    fake.editAnnotations('shop', 'a', { 'tcqos.io/policy': POLICY_5M });
    fake.editAnnotations('shop', 'slow', { 'tcqos.io/policy': POLICY_5M }); // queued again while being worked on
    await eventually(() => expect(node.changes.map((change) => change.ref.containerId)).toEqual(['c-a']));
    fake.editAnnotations('shop', 'b', { 'tcqos.io/policy': POLICY_5M });
    await eventually(() => expect(node.changes.map((change) => change.ref.containerId)).toEqual(['c-a', 'c-b']));
    await sleep(500); // resyncs meanwhile: still one converge of slow at a time
    release();
    // the hung converge finishes on what it had, the next one (right after) on the latest edit
    await eventually(() =>
      expect(node.changes.filter((change) => change.ref.containerId === 'c-slow').map((change) => change.inputs.annotations)).toEqual([
        { 'tcqos.io/policy': POLICY_10M },
        { 'tcqos.io/policy': POLICY_5M },
      ]),
    );
    expect(node.maxOnOne).toBe(1);
  });

  it('converges at most `workers` pods at once', async () => {
    for (let i = 0; i < 6; i++) {
      fake.setPod({ namespace: 'shop', name: `p${i}`, nodeName: NODE });
      node.attach('shop', `p${i}`, `c-p${i}`);
    }
    const releases = Array.from({ length: 6 }, (_, i) => node.hold(`c-p${i}`));
    const running = await start({ workers: 2 });
    await eventually(() => expect(node.running).toBe(2));
    await sleep(300);
    expect(node.maxRunning).toBe(2);
    for (const release of releases) release();
    await running.idle();
  });

  it('reads the registry a few times per resync pass, not once per pod', async () => {
    for (let i = 0; i < 60; i++) {
      fake.setPod({ namespace: 'shop', name: `p${i}`, nodeName: NODE });
      node.attach('shop', `p${i}`, `c-p${i}`);
    }
    await started({ resyncSeconds: 0.5 });
    const listings = node.listings;
    const applies = node.applies.length;
    await sleep(2100); // four passes
    const passes = (node.applies.length - applies) / 60;
    expect(passes).toBeGreaterThanOrEqual(3);
    expect((node.listings - listings) / passes).toBeLessThanOrEqual(2);
  });

  it("takes a pod recreated under the same name for a new pod, and skips the old pod's records", async () => {
    fake.setPod({ namespace: 'shop', name: 'web', nodeName: NODE, uid: 'uid-1', annotations: { 'tcqos.io/policy': POLICY_10M } });
    node.attach('shop', 'web', 'c-old', { uid: 'uid-1', annotations: { 'tcqos.io/policy': POLICY_10M } });
    const running = await started();
    fake.deletePod('shop', 'web');
    fake.setPod({ namespace: 'shop', name: 'web', nodeName: NODE, uid: 'uid-2', annotations: { 'tcqos.io/policy': POLICY_5M } });
    await severalResyncs();
    await running.idle();
    expect(node.changes).toEqual([]); // c-old is uid-1's: its sandbox is being torn down
    node.attach('shop', 'web', 'c-new', { uid: 'uid-2', annotations: { 'tcqos.io/policy': POLICY_10M } });
    await eventually(() => expect(node.changes.map((change) => change.ref.containerId)).toEqual(['c-new'])); // at the next resync
  });

  it('drops the records of gone namespaces on start and periodically, and skips an attachment whose record went meanwhile', async () => {
    fake.setPod({ namespace: 'shop', name: 'web', nodeName: NODE });
    node.attach('shop', 'web', 'c-gone-early');
    node.gone = [...node.records];
    const running = await started();
    expect(node.records).toEqual([]);
    node.attach('shop', 'web', 'c-gone-later');
    node.gone = [...node.records];
    await eventually(() => expect(node.records).toEqual([]));
    await severalResyncs();
    expect(await metric(running, 'tcqos_agent_reconciles_total{result="failed"}')).toBe(0);
  });

  it('warns once on a pod shaped inside its netns that is privileged or adds NET_ADMIN, saying what that allows', async () => {
    fake.setPod({
      namespace: 'shop',
      name: 'router',
      nodeName: NODE,
      uid: 'uid-router',
      containers: [{ name: 'app' }, { name: 'vpn', securityContext: { capabilities: { add: ['NET_ADMIN'] } } }],
    });
    node.attach('shop', 'router', 'c-router');
    fake.setPod({ namespace: 'shop', name: 'root', nodeName: NODE, containers: [{ name: 'debug', securityContext: { privileged: true } }] });
    node.attach('shop', 'root', 'c-root', { site: 'host' }); // shaped on the host end of its veth: out of its reach
    const running = await started();
    await severalResyncs();
    await running.idle();
    expect(fake.events).toHaveLength(1);
    expect(fake.events[0]).toMatchObject({ type: 'Warning', reason: 'TcqosShapingBypassable', involvedObject: { name: 'router', uid: 'uid-router' } });
    expect(fake.events[0]!.message).toBe(
      'container "vpn" adds NET_ADMIN: tcqos shapes eth0 inside the pod\'s network namespace, where CAP_NET_ADMIN can delete or change its qdiscs ' +
        '(and CAP_NET_RAW, granted by default, can send past them with PACKET_QDISC_BYPASS); the limits hold only for pods without NET_ADMIN and with NET_RAW dropped',
    );
  });

  it('answers /healthz 503 until the pods are listed and watched, then 200; /metrics has its own and the per-class families', async () => {
    fake.setPod({ namespace: 'shop', name: 'web', nodeName: NODE });
    fake.failNext({ status: 500 }, { status: 500 });
    const running = await start({ relistBackoff: { initialSeconds: 0.3, maxSeconds: 1 } });
    expect(running.scheme).toBe('http');
    const before = await get(running, '/healthz');
    expect(before.status).toBe(503);
    expect(before.text).toMatch(/node-a/);
    await eventually(async () => expect((await get(running, '/healthz')).status).toBe(200));

    await eventually(async () => expect((await get(running, '/metrics')).text).toContain('tcqos_class_bytes_total'));
    const { status, text, headers } = await get(running, '/metrics');
    expect(status).toBe(200);
    expect(headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const family of [
      'tcqos_agent_reconciles_total',
      'tcqos_agent_errors_total',
      'tcqos_agent_apply_seconds',
      'tcqos_agent_watch_restarts_total',
      'tcqos_agent_drift_healed_total',
      'tcqos_agent_stats_unreadable_attachments',
      'tcqos_class_bytes_total',
    ]) {
      expect(text).toContain(`# TYPE ${family} `);
    }
    expect(text).toContain('tcqos_agent_errors_total{kind="list"} 2');
    expect(text).toMatch(/^tcqos_class_bytes_total\{[^}]*class="default"[^}]*\} 123456$/m);
    expect((await get(running, '/elsewhere')).status).toBe(404);
  });

  it('serves /metrics from a snapshot read in the background, and counts attachments whose counters cannot be read', async () => {
    node.unreadable = [{ containerId: 'c-db', ifname: 'eth0', reason: 'tc: Cannot find device "eth0"' }];
    const running = await started({ metricsRefreshSeconds: 0.5 });
    await eventually(() => expect(node.statsReads).toBeGreaterThanOrEqual(1));
    const reads = node.statsReads;
    for (let i = 0; i < 20; i++) expect((await get(running, '/metrics')).status).toBe(200);
    expect(node.statsReads - reads).toBeLessThanOrEqual(1); // scrapes read nothing themselves
    expect(await metric(running, 'tcqos_agent_stats_unreadable_attachments')).toBe(1);
    expect(await metric(running, 'tcqos_agent_stats_age_seconds')).toBeLessThan(1.5);
  });

  describe('with metricsAuth "kubernetes"', () => {
    it('serves HTTPS; /healthz to anyone, /metrics only for a token the API server authenticates and authorizes for GET /metrics', async () => {
      fake.addToken('prometheus-token', { username: 'system:serviceaccount:monitoring:prometheus' });
      fake.addToken('nobody-token', { username: 'system:serviceaccount:shop:web' });
      fake.grant('system:serviceaccount:monitoring:prometheus', 'get', '/metrics');
      const running = await started({ metricsAuth: 'kubernetes' });
      expect(running.scheme).toBe('https');
      expect((await get(running, '/healthz')).status).toBe(200);

      const anonymous = await get(running, '/metrics');
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers['www-authenticate']).toBe('Bearer realm="tcqos-agent"');
      expect(anonymous.text).not.toContain('tcqos_');
      expect((await get(running, '/metrics', 'forged-token')).status).toBe(401);
      const unauthorized = await get(running, '/metrics', 'nobody-token');
      expect(unauthorized.status).toBe(403);
      expect(unauthorized.text).toContain('system:serviceaccount:shop:web may not get /metrics');

      const allowed = await get(running, '/metrics', 'prometheus-token');
      expect(allowed.status).toBe(200);
      expect(allowed.text).toContain('# TYPE tcqos_agent_reconciles_total counter');
      expect(fake.accessReviews).toContainEqual(expect.objectContaining({ user: 'system:serviceaccount:monitoring:prometheus', path: '/metrics', verb: 'get', allowed: true }));
      // the agent asks as itself (its own credentials), and remembers the answer for a while
      expect(fake.requestsTo('tokenreview').every((request) => request.token === 'fake-token')).toBe(true);
      const reviews = fake.requestsTo('tokenreview').length;
      for (let i = 0; i < 5; i++) expect((await get(running, '/metrics', 'prometheus-token')).status).toBe(200);
      expect(fake.requestsTo('tokenreview')).toHaveLength(reviews);
    });

    it('answers 500, not 200, when the API server cannot be asked', async () => {
      fake.addToken('prometheus-token', { username: 'prometheus' });
      const running = await started({ metricsAuth: 'kubernetes' });
      await fake.close();
      const answer = await get(running, '/metrics', 'prometheus-token');
      expect(answer.status).toBe(500);
      expect(answer.text).toMatch(/^could not check the token with the API server/);
      fake = await FakeApiServer.start();
    });
  });
});
