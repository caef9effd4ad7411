/**
 * The running agent process: real dependencies wired in, until SIGTERM or SIGINT. Loaded only
 * by `tcqos agent` (see command.ts), so the plugin never loads the Kubernetes client or prom-client.
 */
import { applyPodInputs, type UpdateOutcome } from '../attachment/update.ts';
import { readStats } from '../attachment/stats.ts';
import { forgetGone } from '../attachment/collect.ts';
import { AttachmentNotFoundError } from '../attachment/errors.ts';
import { runtimeFromAnnotations } from '../config/kubernetes-bandwidth.ts';
import { DIRECTIONS } from '../config/policy.ts';
import type { Logger } from '../log.ts';
import type { CliIo } from '../cli/runner.ts';
import { OperatorError } from '../cli/errors.ts';
import { asyncToolRunner } from '../netns/runner.ts';
import { sharedNodeBatches } from '../netns/node-batches.ts';
import type { AttachmentRecord } from '../state/record.ts';
import { Registry } from '../state/registry.ts';
import { startAgent, type RunningAgent } from './agent.ts';
import type { AgentDeps, AttachmentView, Converged } from './deps.ts';
import { kubeApi } from './kube.ts';
import { watchNewRecords } from './registry-watch.ts';
import { loadKubeConfig } from './kubeconfig.ts';
import type { AgentSettings } from './settings.ts';

/**
 * tc processes the counter reads run at once: one. Reading counters is background work; with two at
 * once on a 2-core node the agent's own event loop (its watch, /healthz, /metrics) waited for a core
 * (bench: /healthz p99 over 300 ms at 250 attachments). The workers have a runner of their own, one
 * slot each: a worker waiting on a lock or a hung tc holds its own slot, never the refresh's.
 */
const STATS_CONCURRENCY = 1;

export async function runAgent(settings: AgentSettings, log: Logger, io: CliIo): Promise<number> {
  const { config, source, server } = loadKubeConfig(settings.kubeconfig, io.env);
  log.info({ server, credentials: source }, 'API server');
  const registry = new Registry(settings.stateDir);
  // The agent's event loop never waits on a child: its watch, queue and /healthz go on meanwhile.
  const runner = asyncToolRunner(settings.workers);
  // the workers' runs on host ends go together (a policy edit converges many pods at once)
  const tools = { runner, nodeBatches: sharedNodeBatches(runner) };
  const statsTools = { runner: asyncToolRunner(STATS_CONCURRENCY) };
  // The use case's progress lines are details here: the reconciler logs what each converge came to
  // (applied, healed), and every resync converges every attachment.
  const details = (logger: Logger): Logger => ({ ...logger, info: logger.debug });
  const converged = (outcome: UpdateOutcome): Converged => ({
    changed: outcome.changed,
    policyChanged: JSON.stringify(outcome.previous.policy) !== JSON.stringify(outcome.record.policy),
    commands: outcome.commands,
    shapedBy: shapedBy(outcome.record),
  });
  const deps: AgentDeps = {
    listAttachments: () => registry.list().records.map(view),
    dropGone: async () => (await forgetGone(registry, details(log), tools)).map(view),
    applyPodInputs: async (ref, inputs, logger) => converged(await applyPodInputs(registry, ref, inputs, { log: details(logger), tools })),
    async keepInForce(ref, logger) {
      const record = registry.get(ref);
      if (!record) throw new AttachmentNotFoundError(ref, registry.stateDir);
      const inputs = {
        ...(record.runtime ? { runtime: record.runtime } : {}),
        ...(record.annotations ? { annotations: record.annotations } : {}),
        ...(record.bandwidthPolicy ? { policy: record.bandwidthPolicy } : {}),
      };
      return converged(await applyPodInputs(registry, ref, inputs, { log: details(logger), tools }));
    },
    runtimeFromAnnotations,
    readStats: () => readStats(registry, {}, statsTools),
    watchNewAttachments: (onNew) =>
      watchNewRecords(
        `${settings.stateDir}/attachments`,
        (fileName) => {
          // "<ifname>@<containerId>.json" (src/state/registry.ts)
          const [ifname = '', containerId = ''] = fileName.slice(0, -'.json'.length).split('@');
          const pod = registry.get({ containerId, ifname })?.pod;
          if (pod) onNew(pod);
        },
        (error) => log.warn({ error: error.message }, 'cannot watch the registry for new attachments: a pod added before the agent saw it gets its BandwidthPolicy at the next resync'),
      ),
  };
  let agent: RunningAgent;
  try {
    agent = await startAgent(settings, kubeApi(config, source, settings.node), deps, log);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).syscall !== 'listen') throw error;
    const { host, port } = settings.listen;
    throw new OperatorError(`cannot serve on ${host}:${port}: ${(error as Error).message} (choose another --listen)`);
  }
  // Listeners that stay: execa's exit hook (signal-exit) re-raises a signal nobody else listens to
  // any more, which would kill the agent in the middle of its stop (a `once` listener is gone by then).
  const signal = await new Promise<string>((resolve) => {
    for (const name of ['SIGTERM', 'SIGINT'] as const) process.on(name, () => resolve(name));
  });
  log.info({ signal }, 'stopping');
  await agent.stop();
  log.info({}, 'stopped');
  return 0;
}

/** The BandwidthPolicies the record's policy in force comes from (directions whose source is `policy`). */
function shapedBy(record: AttachmentRecord): string[] {
  return [...new Set(DIRECTIONS.flatMap((direction) => (record.sources[direction] === 'policy' && record.bandwidthPolicy?.[direction] ? [record.bandwidthPolicy[direction].name] : [])))];
}

function view(record: AttachmentRecord): AttachmentView {
  return {
    containerId: record.containerId,
    ifname: record.ifname,
    network: record.network,
    ...(record.pod ? { pod: record.pod } : {}),
    site: record.host ? 'host' : 'pod',
  };
}
