/**
 * The node agent, assembled as a controller: an informer lists and watches the node's pods into a
 * cache and puts the key of each pod that came, went or changed on a rate-limited queue; once the
 * cache is synced, a few workers take keys and converge each pod's attachments on the desired state
 * read from the cache (the kernel compared with the policy, only the difference applied); a failed
 * pod comes back after its own exponential back-off; every resync period every pod is queued again
 * (spread over the period), which heals drift. Records of vanished namespaces are dropped on start
 * and periodically. /metrics serves counters read in the background and /healthz the watch's
 * state, throughout.
 *
 * BandwidthPolicies plug in the same way: an Informer of their own (every namespace: few objects),
 * whose onChange adds the keys of the pods a policy selected and selects to this queue
 * (controller-runtime's EnqueueRequestsFromMapFunc, in policies.ts), and whose cache the reconciler
 * reads beside the pods'; the workers start once both caches are synced. A pod's entry for the
 * plugin is written as it is converged; a new record in the registry (an ADD the agent did not
 * see coming) queues its pod at once; each policy's status is written every second at most.
 */
import { readFileSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { OperatorError } from '../cli/errors.ts';
import { renderStats } from '../metrics/prometheus.ts';
import { loadCidrSupport } from '../config/cidr.ts';
import { PolicyEntries } from '../policy/entries.ts';
import { policyKey } from '../policy/object.ts';
import type { Logger } from '../log.ts';
import { AttachmentIndex } from './attachments.ts';
import { ApiServerAuthorizer } from './auth.ts';
import { Controller } from './controller.ts';
import type { AgentDeps } from './deps.ts';
import { podEvents } from './events.ts';
import { Informer } from './informer.ts';
import { NodePolicies } from './policies.ts';
import type { PolicyView } from './policy-api.ts';
import { policyEvents } from './policy-events.ts';
import { PolicyMetrics } from './policy-metrics.ts';
import { PolicyStatusWriter } from './policy-status.ts';
import type { KubeApi } from './kube.ts';
import { AgentMetrics } from './metrics.ts';
import { podKey, type PodView } from './pods.ts';
import { PodReconciler } from './reconcile.ts';
import { NodeRoster } from './node-roster.ts';
import { serve, type Health } from './server.ts';
import type { AgentSettings } from './settings.ts';
import { StatsSnapshot } from './snapshot.ts';
import { selfSignedCertificate, type ServingCertificate } from './tls.ts';
import { ItemExponentialFailureRateLimiter, RateLimitingQueue } from './workqueue.ts';

/** A BandwidthPolicy's status entry for this node is written at most this often. */
const STATUS_PERIOD_MS = 1000;

export interface RunningAgent {
  readonly address: AddressInfo;
  readonly scheme: 'http' | 'https';
  /** The serving certificate (PEM) when over HTTPS. */
  readonly certificate: string | undefined;
  health(): Health;
  /** Resolves when no pod is queued or being converged (pods waiting out a back-off do not count). */
  idle(): Promise<void>;
  /** Stops watching, finishes the pods being converged, closes the server. */
  stop(): Promise<void>;
}

export async function startAgent(settings: AgentSettings, api: KubeApi, deps: AgentDeps, log: Logger): Promise<RunningAgent> {
  const registry = new Registry();
  const metrics = new AgentMetrics(registry);
  const server = { server: api.server, source: api.source };
  const pods = new Informer<PodView>(api.pods, server, settings, podKey, metrics, log);
  const queue = new RateLimitingQueue(new ItemExponentialFailureRateLimiter(settings.retryBackoff.initialSeconds * 1000, settings.retryBackoff.maxSeconds * 1000));
  pods.onChange((key) => queue.add(key));
  // policies are checked as they arrive, peers' CIDRs included
  await loadCidrSupport();
  const policies = new Informer<PolicyView>(api.policies.policies, server, settings, policyKey, metrics, log);
  const policyMetrics = new PolicyMetrics(registry);
  const status: { writer?: PolicyStatusWriter } = {};
  const nodePolicies = new NodePolicies({
    cache: policies,
    pods,
    entries: new PolicyEntries(settings.stateDir),
    enqueue: (key) => queue.add(key),
    touch: (key) => status.writer?.touch(key),
    events: policyEvents(api.policies, settings.node, metrics, log),
    metrics: policyMetrics,
    node: settings.node,
    log,
  });
  status.writer = new PolicyStatusWriter(api.policies, settings.node, (key) => policies.get(key), (key) => nodePolicies.entryOf(key), new NodeRoster(() => api.nodeNames(), log), STATUS_PERIOD_MS, metrics, log);
  policies.onChange((key) => nodePolicies.changed(key));
  const attachments = new AttachmentIndex(() => deps.listAttachments());
  const reconciler = new PodReconciler(pods, attachments, deps, podEvents(api, settings.node, metrics, log), metrics, log, nodePolicies);
  const controller = new Controller(queue, (key) => reconciler.reconcile(key), metrics, log);
  const snapshot = new StatsSnapshot(() => deps.readStats(), renderStats, settings.metricsRefreshSeconds, metrics, log);

  const dropGone = async () => {
    try {
      for (const record of await deps.dropGone()) {
        log.info({ containerId: record.containerId, ifname: record.ifname, pod: record.pod }, 'dropped the record of an attachment whose netns is gone');
      }
    } catch (error) {
      metrics.errors.inc({ kind: 'gc' });
      log.warn({ error: (error as Error).message }, 'dropping records of gone namespaces failed');
    }
  };
  await dropGone();

  const health = (): Health => {
    switch (pods.state) {
      case 'watching':
        return { ok: true, detail: `watching ${api.pods.what}` };
      case 'starting':
        return { ok: false, detail: `not watching yet: listing ${api.pods.what} from ${api.server}` };
      case 'retrying':
        return { ok: false, detail: `the watch on ${api.pods.what} failed; retrying (${api.server})` };
    }
  };
  const tls = settings.metricsAuth === 'kubernetes' ? servingCertificate(settings) : undefined;
  const authorizer = settings.metricsAuth === 'kubernetes' ? new ApiServerAuthorizer(api, log) : undefined;
  // listen first: an address in use fails the start instead of leaving an agent nobody can probe
  const endpoint = await serve(
    settings.listen,
    tls,
    {
      health,
      metrics: async () => `${await registry.metrics()}${snapshot.text}`,
      metricsContentType: registry.contentType,
      ...(authorizer ? { authorize: (authorization, path) => authorizer.decide(authorization, path) } : {}),
    },
    log,
  );
  log.info(
    { address: endpoint.address.address, port: endpoint.address.port, scheme: endpoint.scheme, metricsAuth: settings.metricsAuth, server: api.server, credentials: api.source, workers: settings.workers },
    'tcqos agent started',
  );
  pods.start();
  policies.start();
  snapshot.start();
  status.writer.start();
  const synced = Promise.all([pods.synced(), policies.synced()]).then(() => {
    const dropped = nodePolicies.dropStaleEntries();
    if (dropped) log.info({ dropped }, 'removed the BandwidthPolicy entries of pods no longer on this node');
  });
  const started = controller.run(settings.workers, synced);
  const stopWatchingRecords = deps.watchNewAttachments?.((pod) => {
    attachments.invalidate();
    queue.add(podKey(pod));
  });
  const timers = [
    setInterval(() => void dropGone(), settings.gcSeconds * 1000),
    // every pod once per period, spread over it: a pass costs a few processes per attachment, and
    // 250 converges queued at once kept every worker and both cores busy for half a minute (bench)
    setInterval(() => {
      const keys = pods.keys();
      keys.forEach((key, index) => queue.addAfter(key, (index * settings.resyncSeconds * 1000) / keys.length));
    }, settings.resyncSeconds * 1000),
  ];

  return {
    address: endpoint.address,
    scheme: endpoint.scheme,
    certificate: tls?.cert,
    health,
    idle: async () => {
      await synced;
      await started;
      await queue.idle();
    },
    async stop() {
      for (const timer of timers) clearInterval(timer);
      stopWatchingRecords?.();
      await controller.stop();
      await pods.stop();
      await policies.stop();
      await status.writer!.stop();
      await started;
      await snapshot.stop();
      await endpoint.close();
    },
  };
}

/** The mounted certificate and key, or a self-signed certificate for this node's names and addresses. */
function servingCertificate(settings: AgentSettings): ServingCertificate {
  if (settings.tls) return { cert: readPem(settings.tls.certFile, 'tlsCertFile'), key: readPem(settings.tls.keyFile, 'tlsKeyFile') };
  const addresses = Object.values(networkInterfaces())
    .flat()
    .flatMap((address) => (address && !address.address.includes('%') && !(address.family === 'IPv6' && address.address.includes('.')) ? [address.address] : []));
  return selfSignedCertificate(`tcqos-agent@${settings.node}`, [settings.node, hostname(), 'localhost', ...addresses]);
}

function readPem(path: string, key: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new OperatorError(`${key} ${path}: ${(error as Error).message}`);
  }
}
