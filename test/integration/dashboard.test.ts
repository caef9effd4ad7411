/**
 * Every query of the Grafana dashboard (deploy/grafana/tcqos-dashboard.json) evaluated by a real
 * Prometheus scraping the real agent (the built binary, its /metrics over HTTPS with a bearer token
 * the fake API server vouches for) while real traffic runs through two shaped pods on one uplink:
 * each query returns the series its panel is meant to draw, with the labels its legend names, and
 * values in the range the traffic and the configuration imply. Grafana itself cannot be installed
 * here; its variables are set as "All" would set them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeApiServer } from '../helpers/fake-apiserver.ts';
import { invoke, kubernetesPodCall, TCQOS_BINARY } from '../helpers/plugin.ts';
import { startPrometheus, type PrometheusServer, type Series } from '../helpers/prometheus.ts';
import { run } from '../helpers/run.ts';
import { mbitBetween, stamped } from '../helpers/stamped.ts';
import { Testbed, type Pod } from '../helpers/testbed.ts';
import { linkBytes } from '../helpers/tools.ts';

const bed = new Testbed('tqdash', 105);
const NODE = 'tqdash-node';
const NETWORK = 'dashnet';
const UPLINK = { name: 'tqdup0', capacity: '100mbit', reserve: '10mbit', maxGuaranteePerAttachment: '50mbit' };
const SCRAPER = { token: 'dashboard-prometheus', user: 'system:serviceaccount:monitoring:prometheus' };
const WEB = { namespace: 'shop', name: 'web', uid: '7a1c3c52-0000-4000-8000-000000000001', container: 'tqdash-web' };
const BATCH = { namespace: 'jobs', name: 'batch', uid: '7a1c3c52-0000-4000-8000-000000000002', container: 'tqdash-batch' };

interface Target {
  refId: string;
  expr: string;
  legendFormat: string;
}
interface Panel {
  type: string;
  title: string;
  targets?: Target[];
}
const dashboard = JSON.parse(readFileSync(new URL('../../deploy/grafana/tcqos-dashboard.json', import.meta.url), 'utf8')) as { panels: Panel[] };

let runner: string;
let web: Pod;
let webPeer: Pod;
let batch: Pod;
let batchPeer: Pod;
let stateDir: string;
let fake: FakeApiServer;
let agent: ChildProcess | undefined;
let agentLog = '';
let prometheus: PrometheusServer | undefined;

const annotation = (policy: object) => ({ 'tcqos.io/policy': JSON.stringify(policy) });
const webPolicy = (peer: Pod) => ({ egress: { rate: '40mbit', classes: [{ name: 'db', rate: '20mbit', peers: [`${peer.ipv4}/32`] }] }, ingress: { rate: '30mbit' } });
const batchPolicy = (rate: string) => ({ egress: { rate } });

async function add(pod: Pod, who: typeof WEB, annotations: Record<string, string>): Promise<void> {
  // As containerd does for an annotated pod: the admin's caps in the conflist, the annotations in runtimeConfig.
  const entry = { cniVersion: '1.0.0', name: NETWORK, type: 'tcqos', egress: { rate: '100mbit' }, uplink: UPLINK, capabilities: { 'io.kubernetes.cri.pod-annotations': true } };
  const added = await invoke(runner, kubernetesPodCall({ command: 'ADD', containerId: who.container, pod: who, netns: pod.path, entry, annotations, stateDir }));
  expect(added.exitCode, `${added.stdout}${added.stderr}`).toBe(0);
}

/** `dist/tcqos agent` on a free loopback port; resolves to the port once it says it started. */
async function startAgent(): Promise<number> {
  const settings = join(stateDir, 'agent.json');
  writeFileSync(settings, JSON.stringify({ resyncSeconds: 2, gcSeconds: 5, metricsRefreshSeconds: 1 }));
  fake.writeKubeconfig(join(stateDir, 'kubeconfig'));
  agent = spawn(TCQOS_BINARY, ['agent', '--node', NODE, '--listen', '127.0.0.1:0', '--kubeconfig', join(stateDir, 'kubeconfig'), '--settings', settings], {
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', TCQOS_STATE_DIR: stateDir },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  agent.stderr!.on('data', (chunk: Buffer) => (agentLog += chunk.toString()));
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; await sleep(100)) {
    for (const line of agentLog.split('\n')) {
      const port = /"msg":"tcqos agent started"/.test(line) ? (JSON.parse(line) as { port?: number }).port : undefined;
      if (port) return port;
    }
  }
  throw new Error(`the agent did not start:\n${agentLog}`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An iperf3 flow of `seconds` from the pod to its peer (or back, for ingress). */
function flow(pod: Pod, peer: Pod, port: number, seconds: number, direction: 'egress' | 'ingress' = 'egress'): Promise<unknown> {
  const server = run('ip', ['netns', 'exec', peer.netns, 'iperf3', '-s', '-1', '-p', String(port)], { timeoutMs: (seconds + 30) * 1000 });
  return (async () => {
    for (let i = 0; i < 100 && !(await run('ip', ['netns', 'exec', peer.netns, 'ss', '-Htln', `sport = :${port}`])).stdout.trim(); i++) await sleep(50);
    await run('ip', ['netns', 'exec', pod.netns, 'iperf3', '-c', peer.ipv4, '-p', String(port), '-t', String(seconds), ...(direction === 'ingress' ? ['-R'] : [])], { timeoutMs: (seconds + 20) * 1000 });
    await server;
  })();
}

beforeAll(async () => {
  await bed.removeLeftovers();
  runner = await bed.netns('runner');
  [web, webPeer] = await bed.vethPair('web', 'webp', 2, 3);
  [batch, batchPeer] = await bed.vethPair('batch', 'batchp', 4, 5);
  stateDir = mkdtempSync(join(tmpdir(), 'tqdash-state-'));
  fake = await FakeApiServer.start();
  fake.addToken(SCRAPER.token, { username: SCRAPER.user });
  fake.grant(SCRAPER.user, 'get', '/metrics');
  fake.setPod({ ...WEB, nodeName: NODE, annotations: annotation(webPolicy(webPeer)) });
  fake.setPod({ ...BATCH, nodeName: NODE, annotations: annotation(batchPolicy('10mbit')) });
  await add(web, WEB, annotation(webPolicy(webPeer)));
  await add(batch, BATCH, annotation(batchPolicy('10mbit')));
  const port = await startAgent();
  prometheus = await startPrometheus([{ job: 'tcqos-agent', targets: [`127.0.0.1:${port}`], scheme: 'https', insecureSkipVerify: true, bearerToken: SCRAPER.token }]);
});

afterAll(async () => {
  await prometheus?.stop();
  agent?.kill('SIGTERM');
  for (const [pod, who] of [[web, WEB], [batch, BATCH]] as const) {
    if (runner && pod) await invoke(runner, { command: 'DEL', containerId: who.container, netns: pod.path, config: { cniVersion: '1.0.0', name: NETWORK, type: 'tcqos' }, extraEnv: { TCQOS_STATE_DIR: stateDir } });
  }
  await fake?.close();
  await bed.destroy();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

/** A panel's query with the variables set as "All" sets them, and a rate window for 1 s scrapes. */
function expand(expr: string, window: string): string {
  return expr
    .replaceAll('$__rate_interval', window)
    .replaceAll('$instance', '.*')
    .replaceAll('$namespace', '.*')
    .replaceAll('$pod', '.*')
    .replaceAll('$direction', 'egress|ingress');
}

type Check = (series: Series[]) => void;
const who = (s: Series) => `${s.labels['pod'] ?? ''} ${s.labels['direction'] ?? ''} ${s.labels['class'] ?? ''}`.trim();
const one = (series: Series[], key: string): number => {
  const found = series.filter((s) => who(s) === key);
  expect(found.map(who), key).toEqual([key]);
  return found[0]!.value;
};
const near = (value: number, expected: number, low = 0.85, high = 1.05) => {
  expect(value).toBeGreaterThan(expected * low);
  expect(value).toBeLessThan(expected * high);
};
/**
 * Bits/s each pod's peer received in the seconds before the queries, from the kernel's own link
 * counters (frames, as the HTB classes count them; past the shaper, so drops are not in them). The
 * panels must show what the wire carried, whatever share of its rate a shaper on this VM delivered
 * while the host stole its CPU; the window Prometheus rates over lags that one by a scrape and a
 * refresh, hence the margin.
 */
const wire = { web: 0, batch: 0 };
const likeTheWire = (value: number, sent: number) => near(value, sent, 0.85, 1.15);
const all = (series: Series[], low: number, high: number) => {
  expect(series.length).toBeGreaterThan(0);
  for (const s of series) {
    expect(s.value, JSON.stringify(s.labels)).toBeGreaterThanOrEqual(low);
    expect(s.value, JSON.stringify(s.labels)).toBeLessThanOrEqual(high);
  }
};
const CLASSES = ['batch egress default', 'web egress db', 'web egress default', 'web ingress default'];
const classSeries = (series: Series[]) => {
  expect(series.map(who).sort()).toEqual(CLASSES);
  for (const s of series) expect(s.labels).toMatchObject({ pod_namespace: expect.any(String), container_id: expect.stringMatching(/^tqdash-/), interface: 'eth0', uplink: UPLINK.name });
};

/** What each query must return during the flows: web's db class and batch at their rates, web's default class idle. */
const EXPECTED: Record<string, Record<string, Check>> = {
  'Class rate now, against its guarantee and ceiling': {
    A: (s) => {
      classSeries(s);
      likeTheWire(one(s, 'web egress db'), wire.web);
      likeTheWire(one(s, 'batch egress default'), wire.batch);
      expect(one(s, 'web egress default')).toBeLessThan(1e6);
    },
    B: (s) => {
      classSeries(s);
      expect(one(s, 'web egress db')).toBe(20e6);
      expect(one(s, 'batch egress default')).toBe(10e6);
    },
    C: (s) => {
      classSeries(s);
      expect(one(s, 'web egress db')).toBe(20e6);
      expect(one(s, 'web ingress default')).toBe(30e6);
    },
  },
  'Use of the guarantee': { A: (s) => (classSeries(s), likeTheWire(one(s, 'web egress db'), wire.web / 20e6), all(s, 0, 1.1)) },
  'Use of the ceiling': { A: (s) => (classSeries(s), likeTheWire(one(s, 'batch egress default'), wire.batch / 10e6), all(s, 0, 1.1)) },
  Drops: { A: (s) => (classSeries(s), all(s, 0, 5_000)) },
  'Drop ratio': { A: (s) => (expect(s.map(who)).toEqual(expect.arrayContaining(['web egress db', 'batch egress default'])), all(s, 0, 0.5)) },
  'Queued (backlog)': { A: (s) => (classSeries(s), all(s, 0, 1_000_000)) },
  'Held back at the ceiling': { A: (s) => (classSeries(s), expect(one(s, 'web egress db')).toBeGreaterThan(0), all(s, 0, 1e6)) },
  'Direction rate now, against its ceiling': {
    A: (s) => {
      expect(s.map(who).sort()).toEqual(['batch egress', 'web egress', 'web ingress']);
      likeTheWire(one(s, 'web egress'), wire.web);
    },
    B: (s) => (expect(one(s, 'web egress')).toBe(40e6), expect(one(s, 'batch egress')).toBe(10e6)),
  },
  'Direction drops': { A: (s) => (expect(s.map(who).sort()).toEqual(['batch egress', 'web egress', 'web ingress']), all(s, 0, 5_000)) },
  'Guaranteed against capacity': {
    A: (s) => {
      expect(s.map((x) => [x.labels['uplink'], x.labels['direction']]).sort()).toEqual([[UPLINK.name, 'egress'], [UPLINK.name, 'ingress']]);
      expect(s.find((x) => x.labels['direction'] === 'egress')!.value).toBe(50e6);
      expect(s.find((x) => x.labels['direction'] === 'ingress')!.value).toBe(30e6);
    },
    B: (s) => expect(s.map((x) => [x.labels['uplink'], x.value])).toEqual([[UPLINK.name, 90e6]]),
    C: (s) => expect(s.map((x) => [x.labels['uplink'], x.value])).toEqual([[UPLINK.name, 100e6]]),
  },
  'Share of the uplink guaranteed': { A: (s) => (expect(s.map((x) => x.labels['direction']).sort()).toEqual(['egress', 'ingress']), near(s.find((x) => x.labels['direction'] === 'egress')!.value, 50 / 90, 0.999, 1.001)) },
  'Traffic against capacity': {
    A: (s) => {
      const egress = s.find((x) => x.labels['uplink'] === UPLINK.name && x.labels['direction'] === 'egress');
      likeTheWire(egress!.value, wire.web + wire.batch);
    },
    B: (s) => expect(s.map((x) => x.value)).toEqual([100e6]),
  },
  'Attachments per uplink': { A: (s) => expect(s.map((x) => [x.labels['uplink'], x.value])).toEqual([[UPLINK.name, 2]]) },
  Reconciles: {
    A: (s) => {
      expect(s.map((x) => x.labels['result'])).toEqual(expect.arrayContaining(['applied', 'failed', 'healed', 'invalid', 'not_admitted', 'unchanged']));
      expect(s.find((x) => x.labels['result'] === 'applied')!.value, 'the edit of batch was applied within the window').toBeGreaterThan(0);
      all(s, 0, 100);
    },
  },
  // The kinds the agent declares at start (at 0), whatever it adds later: none of them happened.
  Errors: { A: (s) => (expect(s.map((x) => x.labels['kind'])).toEqual(expect.arrayContaining(['apply', 'event', 'gc', 'list', 'stats', 'watch'])), all(s, 0, 0)) },
  'Watch restarts': { A: (s) => (expect(s.map((x) => x.labels['reason'])).toEqual(expect.arrayContaining(['closed', 'error', 'expired', 'stalled'])), all(s, 0, 1)) },
  'Drift healed and retries': { A: (s) => all(s, 0, 0), B: (s) => all(s, 0, 0) },
  'Work queue': { A: (s) => all(s, 0, 2) },
  'Time to converge one attachment': { A: (s) => all(s, 0.000_1, 5), B: (s) => all(s, 0.000_1, 5) },
  'Counters served': { A: (s) => all(s, 0, 5), B: (s) => all(s, 0, 0) },
  'Time to read every counter': { A: (s) => all(s, 0.000_1, 2) },
  'Scrapes of the agent': { A: (s) => expect(s.map((x) => [x.labels['job'], x.value])).toEqual([['tcqos-agent', 1]]) },
};

describe('the Grafana dashboard against Prometheus scraping the agent', () => {
  it('every query returns the series its panel draws, labelled for its legend, in range, during real traffic', { timeout: 120_000 }, async () => {
    const panels = dashboard.panels.filter((panel) => panel.type !== 'row');
    expect(panels.map((panel) => panel.title).sort()).toEqual(Object.keys(EXPECTED).sort());
    const flows = [flow(web, webPeer, 5901, 25), flow(batch, batchPeer, 5902, 25)];
    try {
      // Scraped before the agent applies an edit while the flows run (batch's rate, and back): reconciles and apply times to show.
      await prometheus!.waitForSeries('up{job="tcqos-agent"} == 1', { timeoutMs: 20_000 });
      await sleep(2_000);
      fake.editAnnotations(BATCH.namespace, BATCH.name, annotation(batchPolicy('12mbit')));
      await sleep(2_000);
      fake.editAnnotations(BATCH.namespace, BATCH.name, annotation(batchPolicy('10mbit')));
      await prometheus!.waitForSeries('tcqos_class_rate_bytes_per_second{pod="batch"} == 1250000', { timeoutMs: 20_000 });
      // Five more seconds at the restored rate fill the 5 s rate window; the peers' links count what arrives meanwhile.
      const sent = () => Promise.all([webPeer, batchPeer].map((peer) => stamped(() => linkBytes(peer.netns, peer.ifname, 'rx'))));
      const before = await sent();
      await sleep(6_000);
      const after = await sent();
      wire.web = mbitBetween(before[0]!, after[0]!) * 1e6;
      wire.batch = mbitBetween(before[1]!, after[1]!) * 1e6;
      console.info(`dashboard: the pods' peers received ${(wire.web / 1e6).toFixed(1)} (web, db class capped at 20) and ${(wire.batch / 1e6).toFixed(1)} (batch, capped at 10) Mbit/s`);
      // Shaped, and flowing: the comparisons below are against real traffic.
      near(wire.web, 20e6, 0.5);
      near(wire.batch, 10e6, 0.5);
      const failures: string[] = [];
      for (const panel of panels) {
        for (const target of panel.targets!) {
          // Agent counters move rarely: their rates over the whole test; the pods' over the last 5 s.
          const window = /tcqos_agent_/.test(target.expr) ? '60s' : '5s';
          const series = await prometheus!.query(expand(target.expr, window));
          for (const s of series) {
            for (const [, label] of target.legendFormat.matchAll(/\{\{(\w+)\}\}/g)) {
              if (label !== 'pod' && label !== 'pod_namespace') expect(s.labels[label!], `${panel.title} ${target.refId}: legend label ${label}`).toBeDefined();
            }
          }
          try {
            EXPECTED[panel.title]![target.refId]!(series);
          } catch (error) {
            failures.push(`${panel.title} ${target.refId}: ${expand(target.expr, window)}\n  -> ${JSON.stringify(series.map((s) => [who(s) || s.labels, s.value]))}\n  ${(error as Error).message}`);
          }
        }
      }
      expect(failures, `${failures.join('\n\n')}\nthe agent's log:\n${agentLog.split('\n').slice(-40).join('\n')}`).toEqual([]);
      console.info(`dashboard: ${panels.reduce((n, p) => n + p.targets!.length, 0)} queries of ${panels.length} panels answered as expected`);
    } finally {
      await Promise.all(flows);
    }
    // What tcqos list says of the uplink is what the uplink panels said.
    const listed = JSON.parse((await run('env', ['TCQOS_STATE_DIR=' + stateDir, TCQOS_BINARY, 'list', '--json'])).stdout) as { uplinks: Array<{ egress: number; ingress: number }> };
    expect(listed.uplinks[0]).toMatchObject({ egress: 50e6, ingress: 30e6 });
  });
});
