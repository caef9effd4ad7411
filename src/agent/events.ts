/**
 * Kubernetes Events on a pod: where `kubectl describe pod` shows a user what tcqos did not apply,
 * what it put back, and what the pod can do against its shaping. Posting is best effort: a failure
 * is logged and counted, never retried, and never stops the agent.
 */
import type { CoreV1Event } from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import type { KubeApi } from './kube.ts';
import type { AgentMetrics } from './metrics.ts';
import type { PodView } from './pods.ts';

/** Why tcqos did not apply a pod's annotations: they are invalid, or the uplink cannot admit them. */
export type Refusal = 'invalid' | 'not_admitted';

export const REASONS = {
  invalid: 'TcqosPolicyInvalid',
  not_admitted: 'TcqosPolicyNotAdmitted',
  /** Qdiscs, classes or filters changed outside tcqos were put back. */
  driftHealed: 'TcqosDriftHealed',
  /** The pod holds what it takes to delete or skip its in-pod shaping. */
  bypassable: 'TcqosShapingBypassable',
} as const;

export type Reason = (typeof REASONS)[keyof typeof REASONS];

const COMPONENT = 'tcqos-agent';
/** The API server refuses longer Event messages. */
const MAX_MESSAGE = 1024;

export interface PodEvents {
  post(pod: PodView, reason: Reason, message: string): Promise<void>;
}

/** A core/v1 Event, Warning (the older, still universal form: first/lastTimestamp and count, no eventTime). */
function podEvent(pod: PodView, reason: Reason, message: string, node: string, now: Date): CoreV1Event {
  return {
    metadata: { generateName: `${pod.name}.`, namespace: pod.namespace },
    involvedObject: { apiVersion: 'v1', kind: 'Pod', namespace: pod.namespace, name: pod.name, ...(pod.uid ? { uid: pod.uid } : {}) },
    reason,
    message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 3)}...` : message,
    type: 'Warning',
    source: { component: COMPONENT, host: node },
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
}

/** Annotations tcqos did not apply: the message, and that the running shaping stays. */
export function refusalMessage(message: string): string {
  const suffix = '; the running shaping is kept';
  return `${message.length > MAX_MESSAGE - suffix.length ? `${message.slice(0, MAX_MESSAGE - suffix.length - 3)}...` : message}${suffix}`;
}

/** What was put back on one attachment: its interface and network, and the tc lines that did it. */
export function driftMessage(ifname: string, network: string, commands: readonly string[]): string {
  const shown = commands.slice(0, 4).join('; ');
  const more = commands.length > 4 ? `; and ${commands.length - 4} more` : '';
  return `the shaping of ${ifname} (network ${network}) was changed outside tcqos and has been restored to its policy with ${commands.length} tc change${commands.length === 1 ? '' : 's'}: ${shown}${more}`;
}

/** Why a pod shaped inside its own netns can undo that shaping, and what it takes to prevent it. */
export function bypassMessage(privileges: readonly string[], interfaces: readonly string[]): string {
  return (
    `${privileges.join(', ')}: tcqos shapes ${interfaces.join(', ')} inside the pod's network namespace, where CAP_NET_ADMIN can delete or change its qdiscs ` +
    '(and CAP_NET_RAW, granted by default, can send past them with PACKET_QDISC_BYPASS); ' +
    'the limits hold only for pods without NET_ADMIN and with NET_RAW dropped'
  );
}

export function podEvents(api: Pick<KubeApi, 'createEvent'>, node: string, metrics: AgentMetrics, log: Logger): PodEvents {
  return {
    async post(pod, reason, message) {
      try {
        await api.createEvent(pod.namespace, podEvent(pod, reason, message, node, new Date()));
      } catch (error) {
        metrics.errors.inc({ kind: 'event' });
        log.warn({ namespace: pod.namespace, pod: pod.name, reason, error: (error as Error).message.split('\n')[0] }, 'could not post an Event on the pod');
      }
    },
  };
}
