/**
 * The running agent process: real dependencies wired in, until SIGTERM or SIGINT. Loaded only
 * by `tcqos agent` (see command.ts), so the plugin never loads the Kubernetes client or prom-client.
 */
import { applyPodInputs } from '../attachment/update.ts';
import { collectStats } from '../attachment/stats.ts';
import { runtimeFromAnnotations } from '../config/kubernetes-bandwidth.ts';
import type { Logger } from '../log.ts';
import type { CliIo } from '../cli/runner.ts';
import { OperatorError } from '../cli/errors.ts';
import { Registry } from '../state/registry.ts';
import { startAgent, type RunningAgent } from './agent.ts';
import type { AgentDeps } from './deps.ts';
import { loadKubeConfig, podApi } from './kube.ts';
import type { AgentSettings } from './settings.ts';
import { asyncToolRunner } from '../netns/runner.ts';

/** ip/tc/nsenter/flock processes the agent runs at once: two cores' worth, leaving room for the runtime's own. */
const TOOL_CONCURRENCY = 4;

export async function runAgent(settings: AgentSettings, log: Logger, io: CliIo): Promise<number> {
  let kubeConfig;
  try {
    kubeConfig = loadKubeConfig(settings.kubeconfig, io.env);
  } catch (error) {
    throw new OperatorError(`cannot load the kubeconfig${settings.kubeconfig ? ` ${settings.kubeconfig}` : ''}: ${(error as Error).message.split('\n')[0]}`);
  }
  const registry = new Registry(settings.stateDir);
  // The agent's event loop must never wait on a child: its watch, queue and /healthz go on meanwhile.
  const tools = { runner: asyncToolRunner(TOOL_CONCURRENCY) };
  const deps: AgentDeps = {
    findByPod: (namespace, name) => registry.findByPod(namespace, name),
    dropGone: () => registry.dropGone(),
    applyPodInputs: (ref, inputs, logger) => applyPodInputs(registry, ref, inputs, { log: logger, tools }),
    runtimeFromAnnotations,
    collectStats: () => collectStats(registry, {}, tools),
  };
  let agent: RunningAgent;
  try {
    agent = await startAgent(settings, podApi(kubeConfig, settings.node), deps, log);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).syscall !== 'listen') throw error;
    const { host, port } = settings.listen;
    throw new OperatorError(`cannot serve on ${host}:${port}: ${(error as Error).message} (choose another --listen)`);
  }
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  log.info({ signal }, 'stopping');
  await agent.stop();
  log.info({}, 'stopped');
  return 0;
}
