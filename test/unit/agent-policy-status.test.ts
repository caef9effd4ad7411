/**
 * A BandwidthPolicy's status written by several node agents at once, through the official client
 * against the fake API server: each writes only its own entry of status.nodes and the totals, under
 * the resourceVersion it saw; the one that lost the race gets 409 and writes again on the newer
 * object, so no entry is lost; an entry that already says what the node would write is not written.
 * A cluster without the CRD has no policies: the agent works as before.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeApi } from '../../src/agent/kube.ts';
import { loadKubeConfig } from '../../src/agent/kubeconfig.ts';
import { AgentMetrics } from '../../src/agent/metrics.ts';
import type { PolicyView } from '../../src/agent/policy-api.ts';
import { NodeRoster } from '../../src/agent/node-roster.ts';
import { PolicyStatusWriter, type OwnEntry } from '../../src/agent/policy-status.ts';
import { FakeApiServer } from '../helpers/fake-apiserver.ts';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined } as never;
let fake: FakeApiServer;
let dir: string;

/** The policy as an agent's watch would have delivered it (the fake's stored object). */
function view(name = 'web'): PolicyView | undefined {
  const stored = fake.policy('shop', name);
  if (!stored) return undefined;
  return { namespace: 'shop', name, uid: stored.metadata.uid, generation: stored.metadata.generation, spec: stored.spec, resourceVersion: stored.metadata.resourceVersion, ...(stored.status ? { status: stored.status } : {}) };
}

function writer(node: string, entry: () => OwnEntry | undefined, views: () => PolicyView | undefined = () => view()): PolicyStatusWriter {
  fake.writeKubeconfig(join(dir, 'kubeconfig'));
  const { config, source } = loadKubeConfig(join(dir, 'kubeconfig'), {});
  const api = kubeApi(config, source, node);
  return new PolicyStatusWriter(api.policies, node, () => views(), () => entry(), new NodeRoster(() => api.nodeNames(), quiet), 1000, new AgentMetrics(new Registry()), quiet);
}

beforeAll(async () => {
  fake = await FakeApiServer.start();
  dir = mkdtempSync(join(tmpdir(), 'tcqos-status-'));
});
afterAll(async () => {
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the status of a BandwidthPolicy', () => {
  it('gets one entry per node and the totals, whoever writes first; the loser of a race writes again on the newer object', async () => {
    fake.setPolicy('shop', 'web', { podSelector: { matchLabels: { app: 'web' } }, egress: { rate: '10mbit' } });
    const seen = view()!;
    const entries: Record<string, OwnEntry> = {
      'node-a': { selector: 'app=web', observedGeneration: 1, selectedPods: 2, shapedPods: 2 },
      'node-b': { selector: 'app=web', observedGeneration: 1, selectedPods: 3, shapedPods: 1, problem: 'node node-b: uplink eth9 cannot admit it' },
    };
    const racers = ['node-a', 'node-b'].map((node) => writer(node, () => entries[node], () => seen));
    for (const racer of racers) racer.touch('shop/web');
    // both on the same resourceVersion: one of them loses
    await Promise.all(racers.map((racer) => racer.flush()));
    expect(fake.statusConflicts).toBe(1);
    const written = fake.policy('shop', 'web')!.status!['nodes'] as Array<{ node: string }>;
    expect(written).toHaveLength(1);
    // the loser writes again on the object its watch now delivers
    const loser = written[0]!.node === 'node-a' ? 'node-b' : 'node-a';
    const again = writer(loser, () => entries[loser]);
    again.touch('shop/web');
    await again.flush();
    expect(fake.policy('shop', 'web')!.status).toMatchObject({
      selector: 'app=web',
      selectedPods: 5,
      shapedPods: 3,
      nodeCount: 2,
      nodes: [
        { node: 'node-a', observedGeneration: 1, selectedPods: 2, shapedPods: 2 },
        { node: 'node-b', observedGeneration: 1, selectedPods: 3, shapedPods: 1, problem: 'node node-b: uplink eth9 cannot admit it' },
      ],
    });
  });

  it('writes nothing when its entry says it already, and removes its entry when it has nothing to say', async () => {
    const writes = fake.statusWrites.length;
    const same = writer('node-a', () => ({ selector: 'app=web', observedGeneration: 1, selectedPods: 2, shapedPods: 2 }));
    same.touch('shop/web');
    await same.flush();
    expect(fake.statusWrites).toHaveLength(writes);
    const gone = writer('node-a', () => undefined);
    gone.touch('shop/web');
    await gone.flush();
    expect(fake.statusWrites).toHaveLength(writes + 1);
    expect(fake.policy('shop', 'web')!.status).toMatchObject({ selectedPods: 3, shapedPods: 1, nodeCount: 1, nodes: [{ node: 'node-b' }] });
  });

  it('drops the entries of nodes a list taken after them no longer has, with its own write; a failed list drops nothing', async () => {
    fake.setPolicy('shop', 'pruned', { podSelector: {}, egress: { rate: '10mbit' } });
    const entry = (node: string, selectedPods: number, updatedAt: string) => ({ node, observedGeneration: 1, selectedPods, shapedPods: selectedPods, updatedAt });
    const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
    const seeded = [
      entry('node-b', 2, hourAgo),
      // deleted from the cluster an hour ago: its agent will never write again
      entry('node-gone', 4, hourAgo),
      // written after any list this agent could have taken: not judged until listed again
      entry('node-new', 8, new Date(Date.now() + 3_600_000).toISOString()),
    ];
    fake.setPolicyStatus('shop', 'pruned', { selector: '', selectedPods: 14, shapedPods: 14, nodeCount: 3, nodes: seeded });
    const own = { selector: '', observedGeneration: 1, selectedPods: 1, shapedPods: 1 };

    fake.nodes = undefined; // the list fails (404): nothing is dropped, its own entry is written
    const unlisted = writer('node-a', () => own, () => view('pruned'));
    unlisted.touch('shop/pruned');
    await unlisted.flush();
    expect((fake.policy('shop', 'pruned')!.status!['nodes'] as Array<{ node: string }>).map((e) => e.node)).toEqual(['node-a', 'node-b', 'node-gone', 'node-new']);

    fake.nodes = ['node-a', 'node-b'];
    const lists = () => fake.requests.filter((request) => request.path === '/api/v1/nodes').length;
    const listsBefore = lists();
    const listed = writer('node-a', () => own, () => view('pruned'));
    listed.touch('shop/pruned');
    await listed.flush();
    expect(fake.policy('shop', 'pruned')!.status).toMatchObject({
      selectedPods: 11,
      nodeCount: 3,
      nodes: [{ node: 'node-a' }, { node: 'node-b' }, { node: 'node-new' }],
    });
    expect(lists() - listsBefore, 'one list of the nodes for the write').toBe(1);
  });
});

describe('a cluster without the BandwidthPolicy CRD', () => {
  it('lists no policies and the agent converges its pods all the same', async () => {
    const { startAgent } = await import('../../src/agent/agent.ts');
    const { resolveSettings } = await import('../../src/agent/settings.ts');
    const { writeFileSync } = await import('node:fs');
    const bare = await FakeApiServer.start();
    bare.withoutPolicyCrd = true;
    bare.setPod({ namespace: 'shop', name: 'web', nodeName: 'n', labels: { app: 'web' } });
    bare.writeKubeconfig(join(dir, 'bare-kubeconfig'));
    writeFileSync(join(dir, 'bare.json'), JSON.stringify({ listen: '127.0.0.1:0', stateDir: dir, logLevel: 'silent', metricsAuth: 'none', relistBackoff: { initialSeconds: 0.05, maxSeconds: 0.1 } }));
    const converged: string[] = [];
    const deps = {
      listAttachments: () => [{ containerId: 'c', ifname: 'eth0', network: 'net', pod: { namespace: 'shop', name: 'web' }, site: 'pod' as const }],
      dropGone: async () => [],
      applyPodInputs: async (ref: { containerId: string }, inputs: { policy?: unknown }) => {
        converged.push(`${ref.containerId} ${inputs.policy === undefined ? 'no policy' : 'policy'}`);
        return { changed: false, policyChanged: false, commands: [] };
      },
      keepInForce: async () => ({ changed: false, policyChanged: false, commands: [] }),
      runtimeFromAnnotations: () => undefined,
      readStats: async () => ({ stats: [], unreadable: [] }),
    };
    const { config, source } = loadKubeConfig(join(dir, 'bare-kubeconfig'), {});
    const agent = await startAgent(resolveSettings({ settings: join(dir, 'bare.json'), node: 'n' }, {}), kubeApi(config, source, 'n'), deps, quiet);
    try {
      await agent.idle();
      expect(converged).toEqual(['c no policy']);
      for (let i = 0; i < 100 && !agent.health().ok; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(agent.health()).toMatchObject({ ok: true, detail: 'watching the pods of node n' });
    } finally {
      await agent.stop();
      await bare.close();
    }
  });
});
