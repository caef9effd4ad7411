/**
 * The agent's list+watch loop (Reflector) through the official client against the fake API server:
 * field selector, resuming from resourceVersions, 410 Gone in both forms, back-off on errors,
 * silence, and a failing API server said once, with the server and the credentials named.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { kubeApi } from '../../src/agent/kube.ts';
import { loadKubeConfig } from '../../src/agent/kubeconfig.ts';
import { AgentMetrics } from '../../src/agent/metrics.ts';
import type { PodView } from '../../src/agent/pods.ts';
import { Reflector, type ReflectorOptions } from '../../src/agent/reflector.ts';
import type { Logger } from '../../src/log.ts';
import { FakeApiServer } from '../helpers/fake-apiserver.ts';

const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };
const FAST: ReflectorOptions = { relistBackoff: { initialSeconds: 0.1, maxSeconds: 1 }, watchTimeoutSeconds: 300 };

async function eventually(check: () => void, timeoutMs = 4000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** What the watch handed over, in order. */
class Seen {
  readonly log: string[] = [];
  readonly handlers = {
    replace: (pods: readonly PodView[]) => this.log.push(`list ${pods.map((pod) => pod.name).join(',')}`),
    upsert: (pod: PodView) => this.log.push(`upsert ${pod.name} ${JSON.stringify(pod.annotations)}`),
    remove: (pod: PodView) => this.log.push(`remove ${pod.name}`),
  };
}

describe('the pod watch', { timeout: 15_000 }, () => {
  let fake: FakeApiServer;
  let dir: string;
  let watch: Reflector<PodView> | undefined;
  let registry: Registry;
  let metrics: AgentMetrics;

  beforeEach(async () => {
    fake = await FakeApiServer.start();
    dir = mkdtempSync(join(tmpdir(), 'tcqos-agent-watch-'));
    registry = new Registry();
    metrics = new AgentMetrics(registry);
  });

  afterEach(async () => {
    await watch?.stop();
    watch = undefined;
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function startWatch(seen: Seen, options: ReflectorOptions = FAST, log: Logger = quiet): Reflector<PodView> {
    fake.writeKubeconfig(join(dir, 'kubeconfig'));
    const { config, source, server } = loadKubeConfig(join(dir, 'kubeconfig'), {});
    watch = new Reflector(kubeApi(config, source, 'node-a').pods, { server, source }, options, seen.handlers, metrics, log);
    watch.start();
    return watch;
  }

  async function counter(name: string, labels: string): Promise<number> {
    const text = await registry.metrics();
    const line = text.split('\n').find((candidate) => candidate.startsWith(`${name}{${labels}}`));
    return Number(line?.split(' ')[1]);
  }

  it("lists the node's pods only, then watches from the list's resourceVersion with bookmarks and a timeout", async () => {
    fake.setPod({ namespace: 'shop', name: 'web', nodeName: 'node-a', annotations: { 'tcqos.io/policy': '{}', unrelated: 'x' } });
    fake.setPod({ namespace: 'shop', name: 'elsewhere', nodeName: 'node-b' });
    const seen = new Seen();
    const running = startWatch(seen);
    await eventually(() => expect(running.state).toBe('watching'));
    expect(seen.log).toEqual(['list web']);
    const [list] = fake.requestsTo('list');
    const [opened] = fake.requestsTo('watch');
    expect(list!.query).toEqual({ fieldSelector: 'spec.nodeName=node-a' });
    expect(opened!.query).toMatchObject({ fieldSelector: 'spec.nodeName=node-a', resourceVersion: '1002', allowWatchBookmarks: 'true', timeoutSeconds: '300' });

    fake.editAnnotations('shop', 'web', { 'tcqos.io/policy': '{"egress":{"rate":"10mbit"}}' });
    fake.setPod({ namespace: 'shop', name: 'elsewhere', nodeName: 'node-b', annotations: { a: 'b' } });
    fake.deletePod('shop', 'web');
    await eventually(() => expect(seen.log).toHaveLength(3));
    // only shaping annotations are handed on
    expect(seen.log).toEqual(['list web', 'upsert web {"tcqos.io/policy":"{\\"egress\\":{\\"rate\\":\\"10mbit\\"}}"}', 'remove web']);
  });

  it('resumes a watch the server ended from the last resourceVersion seen (an event or a bookmark), without listing again', async () => {
    fake.setPod({ namespace: 'shop', name: 'web', nodeName: 'node-a' });
    const seen = new Seen();
    const running = startWatch(seen);
    await eventually(() => expect(running.state).toBe('watching'));
    fake.touchPod('shop', 'web'); // rv 1002
    await eventually(() => expect(seen.log).toHaveLength(2));
    fake.closeWatches();
    await eventually(() => expect(fake.requestsTo('watch')).toHaveLength(2));
    expect(fake.requestsTo('watch')[1]!.query['resourceVersion']).toBe('1002');

    fake.setPod({ namespace: 'other', name: 'elsewhere', nodeName: 'node-b' }); // rv 1003, not this node's
    fake.bookmark();
    await new Promise((resolve) => setTimeout(resolve, 100));
    fake.closeWatches();
    await eventually(() => expect(fake.requestsTo('watch')).toHaveLength(3));
    expect(fake.requestsTo('watch')[2]!.query['resourceVersion']).toBe('1003');
    expect(fake.requestsTo('list')).toHaveLength(1);
    expect(running.state).toBe('watching');
    expect(await counter('tcqos_agent_watch_restarts_total', 'reason="closed"')).toBe(2);
  });

  for (const goneAs of ['event', 'status'] as const) {
    it(`lists again after 410 Gone (${goneAs === 'event' ? 'an ERROR event on the open watch' : 'HTTP 410 to a watch from a compacted resourceVersion'}) and goes on`, async () => {
      fake.goneAs = goneAs;
      fake.setPod({ namespace: 'shop', name: 'web', nodeName: 'node-a' });
      fake.setPod({ namespace: 'shop', name: 'api', nodeName: 'node-a' });
      const seen = new Seen();
      const running = startWatch(seen);
      await eventually(() => expect(running.state).toBe('watching'));
      fake.expireHistory({ tellOpenWatches: goneAs === 'event' });
      // while the agent relists: one pod goes, another changes
      fake.deletePod('shop', 'api');
      fake.editAnnotations('shop', 'web', { 'kubernetes.io/egress-bandwidth': '10M' });
      await eventually(() => expect(seen.log[seen.log.length - 1]).toBe('list web'));
      expect(fake.requestsTo('list')).toHaveLength(2);
      expect(seen.log[0]).toBe('list web,api');
      fake.editAnnotations('shop', 'web', { 'kubernetes.io/egress-bandwidth': '20M' });
      await eventually(() => expect(seen.log[seen.log.length - 1]).toBe('upsert web {"kubernetes.io/egress-bandwidth":"20M"}'));
      expect(await counter('tcqos_agent_watch_restarts_total', 'reason="expired"')).toBe(1);
      expect(await counter('tcqos_agent_errors_total', 'kind="watch"')).toBe(0);
    });
  }

  it('backs off, doubling each time, while the API server fails, then recovers', async () => {
    fake.setPod({ namespace: 'shop', name: 'web', nodeName: 'node-a' });
    fake.failNext({ status: 500 }, { status: 503 }, 'reset', { status: 500 });
    const seen = new Seen();
    const running = startWatch(seen);
    await eventually(() => expect(running.state).toBe('retrying'));
    await eventually(() => expect(running.state).toBe('watching'));
    const lists = fake.requestsTo('list').map((request) => request.at);
    expect(lists).toHaveLength(5);
    const gaps = lists.slice(1).map((at, i) => at - lists[i]!);
    // 100, 200, 400, 800 ms, each ±20%
    for (const [i, gap] of gaps.entries()) {
      expect(gap).toBeGreaterThanOrEqual(100 * 2 ** i * 0.8 - 5);
      expect(gap).toBeLessThan(100 * 2 ** i * 1.2 + 150);
    }
    expect(await counter('tcqos_agent_errors_total', 'kind="list"')).toBe(4);
    expect(seen.log).toEqual(['list web']);

    // after a watch that held for a while, the waiting starts over from the first step
    await new Promise((resolve) => setTimeout(resolve, 1100));
    fake.failNext({ status: 500 });
    fake.closeWatches();
    await eventually(() => expect(fake.requestsTo('watch')).toHaveLength(3));
    const [, failed, reopened] = fake.requestsTo('watch').map((request) => request.at);
    expect(reopened! - failed!).toBeLessThan(100 * 1.2 + 150);
    expect(await counter('tcqos_agent_errors_total', 'kind="watch"')).toBe(1);
    expect(fake.requestsTo('list')).toHaveLength(5);
  });

  it('never waits longer than the cap', async () => {
    fake.failNext(...Array.from({ length: 6 }, () => ({ status: 500 })));
    const seen = new Seen();
    const running = startWatch(seen, { relistBackoff: { initialSeconds: 0.05, maxSeconds: 0.2 }, watchTimeoutSeconds: 300 });
    await eventually(() => expect(running.state).toBe('watching'));
    const lists = fake.requestsTo('list').map((request) => request.at);
    const gaps = lists.slice(1).map((at, i) => at - lists[i]!);
    expect(Math.max(...gaps)).toBeLessThan(200 + 100);
  });

  it('reopens a watch that stays silent past the timeout it asked the server for', async () => {
    fake.ignoreWatchTimeouts = true;
    fake.setPod({ namespace: 'shop', name: 'web', nodeName: 'node-a' });
    const seen = new Seen();
    const running = startWatch(seen, { ...FAST, watchTimeoutSeconds: 0.4 });
    await eventually(() => expect(running.state).toBe('watching'));
    await eventually(() => expect(fake.requestsTo('watch').length).toBeGreaterThanOrEqual(2), 3000);
    expect(await counter('tcqos_agent_watch_restarts_total', 'reason="stalled"')).toBeGreaterThanOrEqual(1);
    expect(fake.requestsTo('list')).toHaveLength(1);
  });

  it('says once that the API server fails, naming it and the kubeconfig, and once that it answers again', async () => {
    const lines: Array<{ level: string; message: string; fields: Record<string, unknown> }> = [];
    const capture = (level: string) => (fields: object, message: string) => lines.push({ level, message, fields: fields as Record<string, unknown> });
    const log: Logger = { info: capture('info'), warn: capture('warn'), error: capture('error'), debug: capture('debug') };
    fake.failNext(...Array.from({ length: 4 }, () => ({ status: 503 })));
    const seen = new Seen();
    const running = startWatch(seen, { relistBackoff: { initialSeconds: 0.02, maxSeconds: 0.05 }, watchTimeoutSeconds: 300 }, log);
    await eventually(() => expect(running.state).toBe('watching'));
    const warned = lines.filter((line) => line.level === 'warn');
    expect(warned).toHaveLength(1);
    expect(warned[0]!.message).toContain(`cannot use the API server ${fake.url} (credentials: kubeconfig ${join(dir, 'kubeconfig')}): HTTP 503`);
    expect(lines.filter((line) => line.level === 'debug')).toHaveLength(3);
    expect(lines.find((line) => line.level === 'info' && line.message.startsWith('the API server answers again'))?.fields).toMatchObject({ failures: 4 });
  });

  it('names the refused connection of an API server that is not there', async () => {
    const lines: string[] = [];
    const log: Logger = { ...quiet, warn: (_fields, message) => lines.push(message) };
    const gone = await FakeApiServer.start();
    const url = gone.url;
    await gone.close();
    const config = join(dir, 'kubeconfig-gone');
    writeFileSync(config, JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'c', cluster: { server: url, 'insecure-skip-tls-verify': true } }], users: [{ name: 'u', user: { token: 't' } }], contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }], 'current-context': 'x' }));
    const loaded = loadKubeConfig(config, {});
    watch = new Reflector(kubeApi(loaded.config, loaded.source, 'node-a').pods, loaded, { relistBackoff: { initialSeconds: 0.02, maxSeconds: 0.05 }, watchTimeoutSeconds: 300 }, new Seen().handlers, metrics, log);
    watch.start();
    await eventually(() => expect(fake.requestsTo('list')).toHaveLength(0));
    await eventually(() => expect(lines).toHaveLength(1));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`cannot use the API server ${url}`);
    expect(lines[0]).toMatch(/ECONNREFUSED/);
  });

  it('stops at once, also while waiting to retry', async () => {
    fake.failNext(...Array.from({ length: 20 }, () => ({ status: 500 })));
    const seen = new Seen();
    const running = startWatch(seen, { relistBackoff: { initialSeconds: 5, maxSeconds: 5 }, watchTimeoutSeconds: 300 });
    await eventually(() => expect(running.state).toBe('retrying'));
    const started = Date.now();
    await running.stop();
    expect(Date.now() - started).toBeLessThan(500);
    watch = undefined;
  });
});
