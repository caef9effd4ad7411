/**
 * Kubernetes Events on a pod: where `kubectl describe pod` shows a user that its annotations were
 * refused. Posting is best effort: a failure is logged and counted, never retried, and never
 * stops the agent.
 */
import type { CoreV1Event } from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import type { PodApi } from './kube.ts';
import type { AgentMetrics } from './metrics.ts';
import type { PodView } from './pods.ts';

/** Why tcqos did not apply a pod's annotations: they are invalid, or the uplink cannot admit them. */
export type Refusal = 'invalid' | 'not_admitted';

export const REFUSAL_REASONS: Readonly<Record<Refusal, string>> = { invalid: 'TcqosPolicyInvalid', not_admitted: 'TcqosPolicyNotAdmitted' };
const COMPONENT = 'tcqos-agent';
/** The API server refuses longer Event messages. */
const MAX_MESSAGE = 1024;

export interface PodEvents {
  /** Reports annotations tcqos did not apply (the running shaping was kept). */
  refused(pod: PodView, refusal: Refusal, message: string): Promise<void>;
}

/** A core/v1 Event (the older, still universal form: first/lastTimestamp and count, no eventTime). */
export function refusalEvent(pod: PodView, refusal: Refusal, message: string, node: string, now: Date): CoreV1Event {
  return {
    metadata: { generateName: `${pod.name}.`, namespace: pod.namespace },
    involvedObject: { apiVersion: 'v1', kind: 'Pod', namespace: pod.namespace, name: pod.name, ...(pod.uid ? { uid: pod.uid } : {}) },
    reason: REFUSAL_REASONS[refusal],
    message: `${message.length > MAX_MESSAGE - 60 ? `${message.slice(0, MAX_MESSAGE - 63)}...` : message}; the running shaping is kept`,
    type: 'Warning',
    source: { component: COMPONENT, host: node },
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
}

export function podEvents(api: PodApi, node: string, metrics: AgentMetrics, log: Logger): PodEvents {
  return {
    async refused(pod, refusal, message) {
      try {
        await api.createEvent(pod.namespace, refusalEvent(pod, refusal, message, node, new Date()));
      } catch (error) {
        metrics.errors.inc({ kind: 'event' });
        log.warn({ namespace: pod.namespace, pod: pod.name, error: (error as Error).message.split('\n')[0] }, 'could not post an Event on the pod');
      }
    },
  };
}
