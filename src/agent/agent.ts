/**
 * The node agent, assembled: the pods of this node are listed and watched into a small cache;
 * each pod whose shaping annotations changed is queued for the reconciler; every pod is queued
 * again each resync period (cheap: nothing is applied unchanged); records of vanished namespaces
 * are dropped on start and periodically; /metrics and /healthz are served throughout.
 */
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import type { Logger } from '../log.ts';
import { registerAttachmentMetrics } from '../metrics/prometheus.ts';
import type { AgentDeps } from './deps.ts';
import { podEvents } from './events.ts';
import type { PodApi } from './kube.ts';
import { AgentMetrics } from './metrics.ts';
import { fingerprint, podKey, type PodView } from './pods.ts';
import { KeyedQueue } from './queue.ts';
import { Reconciler } from './reconcile.ts';
import { serve, type Health } from './server.ts';
import type { AgentSettings } from './settings.ts';
import { PodWatch } from './watch.ts';

export interface RunningAgent {
  readonly address: AddressInfo;
  health(): Health;
  /** Resolves when no pod is queued or being reconciled. */
  idle(): Promise<void>;
  /** Stops watching, finishes the pod being reconciled, closes the server. */
  stop(): Promise<void>;
}

export async function startAgent(settings: AgentSettings, api: PodApi, deps: AgentDeps, log: Logger): Promise<RunningAgent> {
  const registry = new Registry();
  const metrics = new AgentMetrics(registry);
  registerAttachmentMetrics(registry, () => deps.collectStats());
  const reconciler = new Reconciler(deps, podEvents(api, settings.node, metrics, log), metrics, log);

  const pods = new Map<string, PodView>();
  const queue = new KeyedQueue(
    async (key) => {
      const pod = pods.get(key);
      if (pod) await reconciler.reconcile(pod);
    },
    (key, error) => log.error({ pod: key, error: String(error) }, 'reconciling the pod failed'),
  );
  const forget = (pod: PodView) => {
    pods.delete(podKey(pod));
    reconciler.forget(pod);
  };
  /** A pod seen for the first time, or whose shaping annotations (or identity) changed. */
  const upsert = (pod: PodView) => {
    const key = podKey(pod);
    const known = pods.get(key);
    pods.set(key, pod);
    if (!known || known.uid !== pod.uid || fingerprint(known.annotations) !== fingerprint(pod.annotations)) queue.add(key);
  };
  const watch = new PodWatch(
    api,
    settings,
    {
      replace(list) {
        const listed = new Set(list.map(podKey));
        for (const pod of [...pods.values()]) if (!listed.has(podKey(pod))) forget(pod);
        for (const pod of list) upsert(pod);
      },
      upsert,
      remove: forget,
    },
    metrics,
    log,
  );

  const dropGone = () => {
    try {
      const dropped = deps.dropGone();
      reconciler.forgetAttachments(dropped);
      for (const record of dropped) {
        log.info({ containerId: record.containerId, ifname: record.ifname, pod: record.pod }, 'dropped the record of an attachment whose netns is gone');
      }
    } catch (error) {
      metrics.errors.inc({ kind: 'gc' });
      log.warn({ error: (error as Error).message }, 'dropping records of gone namespaces failed');
    }
  };
  dropGone();

  const health = (): Health => {
    switch (watch.state) {
      case 'watching':
        return { ok: true, detail: `watching the pods of node ${settings.node}` };
      case 'starting':
        return { ok: false, detail: `not watching yet: listing the pods of node ${settings.node} from ${api.server}` };
      case 'retrying':
        return { ok: false, detail: `the watch on the pods of node ${settings.node} failed; retrying (${api.server})` };
    }
  };
  // listen first: an address in use fails the start instead of leaving an agent nobody can probe
  const server = await serve(settings.listen, registry, health, log);
  log.info({ address: server.address.address, port: server.address.port, server: api.server }, 'tcqos agent started');
  watch.start();
  const timers = [
    setInterval(dropGone, settings.gcSeconds * 1000),
    setInterval(() => {
      for (const key of pods.keys()) queue.add(key);
    }, settings.resyncSeconds * 1000),
  ];

  return {
    address: server.address,
    health,
    idle: () => queue.idle(),
    async stop() {
      for (const timer of timers) clearInterval(timer);
      await watch.stop();
      await queue.idle();
      await server.close();
    },
  };
}
