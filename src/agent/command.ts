/**
 * `tcqos agent`: flags and help only. The agent itself (the Kubernetes client, prom-client) is
 * loaded when it runs, so `tcqos agent --help` and a mistyped flag stay as quick as any command.
 */
import { createLogger } from '../log.ts';
import type { Subcommand } from '../cli/runner.ts';
import { DEFAULT_LISTEN, resolveSettings } from './settings.ts';
import { logProcessWarnings } from './warnings.ts';

const USAGE = `Usage: tcqos agent [--node NAME] [--listen HOST:PORT] [--kubeconfig FILE] [--settings FILE] [--state-dir DIR]

The Kubernetes node agent (the DaemonSet's main container), a controller: it watches the pods of
its node and converges each pod's attachments on the policy its tcqos.io/policy,
tcqos.io/policy.<network> and kubernetes.io/{ingress,egress}-bandwidth annotations give under the
caps of the conflist (an annotation tightens, never loosens): the kernel's qdiscs, classes and
filters are compared with that policy and only the difference is applied. An edit is applied
live; every pod is converged again each resync period, so a class changed or deleted by hand is
restored (Warning Event TcqosDriftHealed, tcqos_agent_drift_healed_total); a failed pod is tried
again with its own exponential back-off. An invalid annotation keeps the running shaping and is
reported on the pod as a Warning Event (TcqosPolicyInvalid); so is a policy its uplink cannot
admit (TcqosPolicyNotAdmitted). A pod shaped inside its netns that is privileged or adds
NET_ADMIN gets a Warning Event (TcqosShapingBypassable). Records of attachments whose netns is
gone are dropped.

BandwidthPolicies (tcqos.io/v1alpha1) select pods by label: the one in force for a pod's network
(a policy naming the network first, then the highest priority, then the name; the pod's own
tcqos.io/policy annotation replaces any policy) is applied live like an annotation, and written
for each pod of the node under the state directory (policies/), where ADD reads it, so a new pod
is shaped by its policy from its first packet. A policy the agent refuses keeps the running
shaping and gets a Warning Event (TcqosPolicyInvalid, TcqosPolicyNotAdmitted); each agent writes
its node's entry of the policy's status. It serves:
  /metrics   Prometheus: per-class counters of every attachment (read in the background every
             metricsRefreshSeconds) and tcqos_agent_*. By default over HTTPS (a self-signed
             certificate made at start, or tlsCertFile/tlsKeyFile), for a bearer token the API
             server authenticates (TokenReview) and authorizes for GET /metrics
             (SubjectAccessReview: RBAC nonResourceURLs ["/metrics"]); 401/403 otherwise
  /healthz   open to all: 200 once the pods are listed and watched, 503 before and while the
             watch is failing

Flags:
  --node NAME         the node whose pods to watch (default: $NODE_NAME; one of them is required)
  --listen HOST:PORT  address of /metrics and /healthz (default: ${DEFAULT_LISTEN}; IPv6 as [::]:9190)
  --kubeconfig FILE   API server credentials (default: the pod's service account when
                      KUBERNETES_SERVICE_HOST is set, else $KUBECONFIG, else ~/.kube/config;
                      none of them: exit 1 saying where it looked)
  --settings FILE     JSON settings (the ConfigMap), every key optional; flags win:
                        {"listen": "0.0.0.0:9190", "logLevel": "info", "stateDir": "/run/tcqos",
                         "resyncSeconds": 60, "gcSeconds": 60, "watchTimeoutSeconds": 300,
                         "workers": 4, "retryBackoff": {"initialSeconds": 0.05, "maxSeconds": 300},
                         "relistBackoff": {"initialSeconds": 1, "maxSeconds": 30},
                         "metricsRefreshSeconds": 5, "metricsAuth": "kubernetes",
                         "tlsCertFile": "/etc/tcqos/tls/tls.crt", "tlsKeyFile": "/etc/tcqos/tls/tls.key"}
                      metricsAuth "none" serves plain HTTP to anyone: loopback addresses only
  --state-dir DIR     the registry of attachments (default: $TCQOS_STATE_DIR, else the settings'
                      stateDir, else /run/tcqos): the same directory the plugin writes

Logs are JSON lines on stderr. SIGTERM or SIGINT stops it (exit 0).
Needs RBAC: pods list/watch (all namespaces), bandwidthpolicies.tcqos.io list/watch and
bandwidthpolicies/status patch, events create, tokenreviews create, subjectaccessreviews create.
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
