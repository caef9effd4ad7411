/**
 * Warning Events on a BandwidthPolicy, where `kubectl describe bandwidthpolicy` shows them: a spec
 * the agent refuses (naming the field), or one a node cannot apply (naming the node, and the uplink
 * when it cannot admit it). Once per change: an Event's name is made from the policy, its
 * generation and what is reported, so a resync or another pod never reports it again, and a spec
 * refused on every node is reported once in the cluster (the first agent creates the Event, the
 * others find it there: 409). Posting is best effort, as for pods.
 */
import { createHash } from 'node:crypto';
import type { CoreV1Event } from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import { POLICY_API_VERSION, POLICY_KIND } from '../policy/object.ts';
import type { AgentMetrics } from './metrics.ts';
import type { PolicyApi, PolicyView } from './policy-api.ts';

export const POLICY_REASONS = { invalid: 'TcqosPolicyInvalid', not_admitted: 'TcqosPolicyNotAdmitted' } as const;

const COMPONENT = 'tcqos-agent';
const MAX_MESSAGE = 1024;
const SUFFIX = '; the running shaping is kept';

export interface PolicyEvents {
  /** Reports the refusal once per (policy generation, node when `node`, message). */
  post(policy: Pick<PolicyView, 'namespace' | 'name' | 'uid' | 'generation'>, reason: keyof typeof POLICY_REASONS, message: string, node?: string): Promise<void>;
}

function policyEvent(policy: Pick<PolicyView, 'namespace' | 'name' | 'uid' | 'generation'>, reason: keyof typeof POLICY_REASONS, message: string, host: string, node: string | undefined, now: Date): CoreV1Event {
  const text = `${node ? `node ${node}: ` : ''}${message}`;
  const bounded = text.length > MAX_MESSAGE - SUFFIX.length ? `${text.slice(0, MAX_MESSAGE - SUFFIX.length - 3)}...` : text;
  const id = createHash('sha256').update(`${policy.generation}\n${reason}\n${node ?? ''}\n${message}`).digest('hex').slice(0, 16);
  return {
    metadata: { name: `${policy.name.slice(0, 200)}.${id}`, namespace: policy.namespace },
    involvedObject: { apiVersion: POLICY_API_VERSION, kind: POLICY_KIND, namespace: policy.namespace, name: policy.name, ...(policy.uid ? { uid: policy.uid } : {}) },
    reason: POLICY_REASONS[reason],
    message: `${bounded}${SUFFIX}`,
    type: 'Warning',
    source: { component: COMPONENT, host },
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
}

export function policyEvents(api: Pick<PolicyApi, 'createEvent'>, host: string, metrics: AgentMetrics, log: Logger): PolicyEvents {
  const posted = new Set<string>();
  return {
    async post(policy, reason, message, node) {
      const event = policyEvent(policy, reason, message, host, node, new Date());
      const name = `${policy.namespace}/${event.metadata!.name}`;
      if (posted.has(name)) return;
      posted.add(name);
      try {
        const created = await api.createEvent(policy.namespace, event);
        if (!created) log.debug({ policy: `${policy.namespace}/${policy.name}`, reason }, 'the refusal of the policy was reported already (by another agent)');
      } catch (error) {
        posted.delete(name);
        metrics.errors.inc({ kind: 'event' });
        log.warn({ policy: `${policy.namespace}/${policy.name}`, reason, error: (error as Error).message.split('\n')[0] }, 'could not post an Event on the BandwidthPolicy');
      }
    },
  };
}
