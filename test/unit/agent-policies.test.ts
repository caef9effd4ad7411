/**
 * The agent's side of BandwidthPolicies, with the caches as plain maps: a policy's change
 * re-enqueues exactly the pods it selected and those it selects now; a status write (same
 * generation) enqueues nothing; a refused spec keeps the last valid one in force and is reported
 * once; each pod's entry for the plugin follows what selects it and goes with the pod.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { NodePolicies } from '../../src/agent/policies.ts';
import type { PolicyView } from '../../src/agent/policy-api.ts';
import { PolicyMetrics } from '../../src/agent/policy-metrics.ts';
import type { PodView } from '../../src/agent/pods.ts';
import { loadCidrSupport } from '../../src/config/cidr.ts';
import { PolicyEntries } from '../../src/policy/entries.ts';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined } as never;
let dir: string;
let policies: Map<string, PolicyView>;
let pods: Map<string, PodView>;
let queued: string[];
let events: Array<{ policy: string; reason: string; message: string; node?: string }>;
let node: NodePolicies;

const cache = <T>(map: Map<string, T>) => ({ get: (key: string) => map.get(key), keys: () => [...map.keys()] });
const pod = (name: string, labels: Record<string, string>, namespace = 'shop'): PodView => ({ namespace, name, uid: `uid-${name}`, labels, annotations: {}, privileges: [] });
let generation = 0;
function put(name: string, spec: object, namespace = 'shop'): string {
  const key = `${namespace}/${name}`;
  const known = policies.get(key);
  policies.set(key, { namespace, name, generation: (known?.generation ?? 0) + 1, spec, resourceVersion: String(++generation) });
  node.changed(key);
  return key;
}
/** Every pod known is converged once (what the workers do), so the node knows what selects what. */
function convergeAll(): void {
  for (const [key, view] of pods) node.select(key, view);
  queued = [];
}

beforeAll(async () => {
  await loadCidrSupport();
  dir = mkdtempSync(join(tmpdir(), 'tcqos-policies-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(() => {
  policies = new Map();
  pods = new Map(
    [pod('web-1', { app: 'web' }), pod('web-2', { app: 'web' }), pod('db-1', { app: 'db' }), pod('web-9', { app: 'web' }, 'other')].map((view) => [`${view.namespace}/${view.name}`, view]),
  );
  queued = [];
  events = [];
  node = new NodePolicies({
    cache: cache(policies),
    pods: cache(pods),
    entries: new PolicyEntries(dir),
    enqueue: (key) => queued.push(key),
    touch: () => undefined,
    events: { post: async (view, reason, message, onNode) => void events.push({ policy: `${view.namespace}/${view.name}`, reason, message, ...(onNode ? { node: onNode } : {}) }) },
    metrics: new PolicyMetrics(new Registry()),
    node: 'node-a',
    log: quiet,
  });
});

describe('BandwidthPolicies on a node', () => {
  it('a new policy enqueues the pods of its namespace it selects, and no other', () => {
    put('web', { podSelector: { matchLabels: { app: 'web' } }, egress: { rate: '10mbit' } });
    expect(queued.sort()).toEqual(['shop/web-1', 'shop/web-2']);
  });

  it('an edit of the selector enqueues the pods it selected and those it selects now', () => {
    put('web', { podSelector: { matchLabels: { app: 'web' } }, egress: { rate: '10mbit' } });
    convergeAll();
    put('web', { podSelector: { matchLabels: { app: 'db' } }, egress: { rate: '10mbit' } });
    expect(queued.sort()).toEqual(['shop/db-1', 'shop/web-1', 'shop/web-2']);
  });

  it('a status write (same generation) enqueues nothing; a deletion enqueues what it selected', () => {
    const key = put('web', { podSelector: { matchLabels: { app: 'web' } }, egress: { rate: '10mbit' } });
    convergeAll();
    policies.set(key, { ...policies.get(key)!, resourceVersion: 'status-write', status: { nodes: [] } });
    node.changed(key);
    expect(queued).toEqual([]);
    policies.delete(key);
    node.changed(key);
    expect(queued.sort()).toEqual(['shop/web-1', 'shop/web-2']);
  });

  it('a refused spec keeps the last valid one in force, enqueues nothing and is reported once, naming the field', () => {
    put('web', { podSelector: { matchLabels: { app: 'web' } }, egress: { rate: '10mbit' } });
    convergeAll();
    put('web', { podSelector: {}, egress: { rate: '10 furlongs' } });
    expect(queued).toEqual([]);
    expect(events).toEqual([{ policy: 'shop/web', reason: 'invalid', message: expect.stringMatching(/^BandwidthPolicy shop\/web: spec\.egress\.rate: /) }]);
    expect(node.select('shop/web-1', pods.get('shop/web-1')!).map((policy) => policy.trees.egress)).toEqual([{ rate: '10mbit' }]);
    expect(node.select('shop/db-1', pods.get('shop/db-1')!)).toEqual([]);
    expect(node.entryOf('shop/web')).toMatchObject({ selectedPods: 2, problem: expect.stringMatching(/spec\.egress\.rate/) });
  });

  it('a policy a node cannot apply (an uplink cannot admit it) is reported once per change, naming the node, and shows in its status entry', async () => {
    put('web', { podSelector: { matchLabels: { app: 'web' } }, egress: { rate: '10mbit' } });
    convergeAll();
    const refusal = 'uplink eth9 cannot admit a guarantee of 10mbit: 95mbit of 95mbit guaranteed';
    await node.refuse('shop/web', 'not_admitted', refusal);
    await node.refuse('shop/web', 'not_admitted', refusal); // the other pod, or the next resync
    expect(events).toEqual([{ policy: 'shop/web', reason: 'not_admitted', message: refusal, node: 'node-a' }]);
    expect(node.entryOf('shop/web')).toMatchObject({ selectedPods: 2, problem: refusal });
    // a new generation may be refused again
    put('web', { podSelector: { matchLabels: { app: 'web' } }, egress: { rate: '12mbit' } });
    await node.refuse('shop/web', 'not_admitted', refusal);
    expect(events).toHaveLength(2);
  });

  it('writes each selected pod\'s entry for the plugin, removes it when nothing selects the pod or the pod goes, and drops stale ones', () => {
    put('web', { podSelector: { matchLabels: { app: 'web' } }, egress: { rate: '10mbit' } });
    convergeAll();
    const entries = new PolicyEntries(dir);
    expect(entries.read({ namespace: 'shop', name: 'web-1', uid: 'uid-web-1' }).entry?.policies.map((policy) => policy.key)).toEqual(['shop/web']);
    expect(existsSync(join(dir, 'policies', 'shop_db-1.json'))).toBe(false);
    pods.set('shop/web-1', pod('web-1', { app: 'other' }));
    node.select('shop/web-1', pods.get('shop/web-1')!);
    expect(entries.read({ namespace: 'shop', name: 'web-1' })).toEqual({});
    node.forget('shop/web-2', { namespace: 'shop', name: 'web-2' });
    expect(entries.read({ namespace: 'shop', name: 'web-2' })).toEqual({});
    entries.write({ version: 1, namespace: 'shop', name: 'long-gone', policies: [] });
    expect(node.dropStaleEntries()).toBe(1);
  });
});
