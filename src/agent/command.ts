/**
 * `tcqos agent`: flags and help only. The agent itself (the Kubernetes client, prom-client) is
 * loaded when it runs, so `tcqos agent --help` and a mistyped flag stay as quick as any command.
 */
import { createLogger } from '../log.ts';
import type { Subcommand } from '../cli/runner.ts';
import { DEFAULT_LISTEN, resolveSettings } from './settings.ts';
import { logProcessWarnings } from './warnings.ts';

const USAGE = `Usage: tcqos agent [--node NAME] [--listen HOST:PORT] [--kubeconfig FILE] [--settings FILE] [--state-dir DIR]

The Kubernetes node agent (the DaemonSet's main container). It watches the pods of its node and,
when a pod's tcqos.io/policy, tcqos.io/policy.<network> or kubernetes.io/{ingress,egress}-bandwidth
annotation changes, applies the new policy to that pod's attachments live, under the caps of the
conflist (an annotation tightens, never loosens). An invalid annotation keeps the running shaping
and is reported on the pod as a Warning Event (reason TcqosPolicyInvalid); so is a policy its
uplink cannot admit (TcqosPolicyNotAdmitted, tried again each resync). On start it applies edits
made while it was down. It drops the records of attachments whose netns is gone, and serves:
  /metrics   Prometheus: per-class counters of every attachment, and tcqos_agent_* metrics
  /healthz   200 once the pods are listed and watched, 503 before and while the watch is failing

Flags:
  --node NAME         the node whose pods to watch (default: $NODE_NAME; one of them is required)
  --listen HOST:PORT  address of /metrics and /healthz (default: ${DEFAULT_LISTEN}; IPv6 as [::]:9190)
  --kubeconfig FILE   API server credentials (default: the pod's service account when
                      KUBERNETES_SERVICE_HOST is set, else $KUBECONFIG or ~/.kube/config)
  --settings FILE     JSON settings (the ConfigMap), every key optional; flags win:
                        {"listen": "0.0.0.0:9190", "logLevel": "info", "stateDir": "/run/tcqos",
                         "relistBackoff": {"initialSeconds": 1, "maxSeconds": 30},
                         "resyncSeconds": 60, "gcSeconds": 60, "watchTimeoutSeconds": 300}
  --state-dir DIR     the registry of attachments (default: $TCQOS_STATE_DIR, else the settings'
                      stateDir, else /run/tcqos): the same directory the plugin writes

Logs are JSON lines on stderr. SIGTERM or SIGINT stops it (exit 0).
Needs RBAC: pods get/list/watch (all namespaces), events create.
`;

export const agentCommand: Subcommand = {
  name: 'agent',
  summary: 'the Kubernetes node agent: apply annotation edits live, serve /metrics',
  usage: USAGE,
  options: {
    node: { type: 'string' },
    listen: { type: 'string' },
    kubeconfig: { type: 'string' },
    settings: { type: 'string' },
    'state-dir': { type: 'string' },
  },
  async run(values, _positionals, io) {
    const text = (name: string) => values[name] as string | undefined;
    // settings are checked before the agent's heavy modules load: a bad flag fails at once
    const settings = resolveSettings(
      { node: text('node'), listen: text('listen'), kubeconfig: text('kubeconfig'), settings: text('settings'), stateDir: text('state-dir') },
      io.env,
    );
    const log = createLogger({ logLevel: settings.logLevel }, { component: 'agent', node: settings.node });
    // before the Kubernetes client loads: its dependencies warn as they load
    logProcessWarnings(log);
    return (await import('./run.ts')).runAgent(settings, log, io);
  },
};
