/**
 * Converges one pod's attachments on the desired state (controller-runtime's Reconciler): the pod
 * as the cache last saw it gives the inputs, each attachment's kernel state is read and compared
 * with the policy they give under the attachment's caps, and only the difference is applied. It is
 * level-triggered: the same call applies an edit, heals a class changed or deleted by hand, and
 * catches up after a missed event or a restart, so it runs for every pod at every resync.
 *
 * - An invalid annotation (ConfigError) or a policy the uplink cannot admit (AdmissionError) is
 *   reported on the pod as a Warning Event, once per message; the running shaping (the inputs the
 *   record holds) is kept and still converged on, so drift is healed for those pods too.
 * - The kernel put back to an unchanged policy is drift healed: an Event naming the tc changes and
 *   tcqos_agent_drift_healed_total.
 * - A pod shaped inside its own netns that is privileged or adds NET_ADMIN gets one Warning Event
 *   saying what that lets it do.
 * - The BandwidthPolicies selecting the pod (policies.ts) are resolved per attachment network and
 *   converged on with the annotations (the pod's own annotation replaces any policy); a refusal
 *   that comes from a policy (its tree does not fit this network's cap, an uplink cannot admit it)
 *   is reported on the policy, not the pod.
 * - An attachment whose record or netns went away meanwhile is skipped (GC drops its record).
 * - Any other failure fails the pod: the caller queues it again with per-pod back-off.
 */
import { AdmissionError, AttachmentNotFoundError } from '../attachment/errors.ts';
import { ConfigError } from '../config/errors.ts';
import { POLICY_ANNOTATION } from '../config/policy-annotations.ts';
import type { BandwidthPolicyInput } from '../config/policy.ts';
import type { Logger } from '../log.ts';
import { policiesIn, resolveForNetwork } from '../policy/resolve.ts';
import { NetnsUnusableError } from '../netns/session.ts';
import type { AttachmentIndex } from './attachments.ts';
import type { AgentDeps, AttachmentRef, AttachmentView, Converged } from './deps.ts';
import { bypassMessage, driftMessage, REASONS, refusalMessage, type PodEvents, type Reason, type Refusal } from './events.ts';
import type { AgentMetrics, ReconcileResult } from './metrics.ts';
import type { NodePolicies } from './policies.ts';
import type { PodView } from './pods.ts';

/** The pods as the cache holds them. */
export interface PodCache {
  get(key: string): PodView | undefined;
  changedAt(key: string): number | undefined;
}

interface Outcome {
  readonly result: ReconcileResult | 'gone';
  /** `policies`: the BandwidthPolicies it is due to (reported on them); none: the pod's annotations. */
  readonly refusal?: { readonly kind: Refusal; readonly message: string; readonly policies?: readonly string[] };
  readonly healed?: Converged;
  readonly error?: string;
  readonly shapedBy?: readonly string[];
}

/** Events posted on a pod (reason and message), so none is posted twice; dropped with the pod. */
interface Reported {
  readonly uid: string | undefined;
  readonly annotations: string;
  readonly keys: Set<string>;
}

export class PodReconciler {
  private readonly pods: PodCache;
  private readonly attachments: AttachmentIndex;
  private readonly deps: AgentDeps;
  private readonly events: PodEvents;
  private readonly metrics: AgentMetrics;
  private readonly log: Logger;
  private readonly policies: NodePolicies | undefined;
  private readonly reported = new Map<string, Reported>();

  constructor(pods: PodCache, attachments: AttachmentIndex, deps: AgentDeps, events: PodEvents, metrics: AgentMetrics, log: Logger, policies?: NodePolicies) {
    this.pods = pods;
    this.attachments = attachments;
    this.deps = deps;
    this.events = events;
    this.metrics = metrics;
    this.log = log;
    this.policies = policies;
  }

  /** Throws when an attachment could not be converged (the pod is to be tried again). */
  async reconcile(key: string): Promise<void> {
    const pod = this.pods.get(key);
    if (!pod) {
      // deleted: its records go when its netns does (GC); a pod of the same name later starts afresh
      this.reported.delete(key);
      const [namespace = '', name = ''] = key.split('/');
      this.policies?.forget(key, { namespace, name });
      return;
    }
    // before anything else: the entry the plugin reads when the pod's sandbox is added
    const selecting = this.policies?.select(key, pod) ?? [];
    // a record of an earlier pod of the same name (its sandbox not deleted yet) is not this pod's
    const records = this.attachments.forPod(pod, this.pods.changedAt(key)).filter((record) => !pod.uid || !record.pod?.uid || record.pod.uid === pod.uid);
    if (!records.length) {
      this.policies?.shaping(key, []);
      return;
    }
    const reported = this.reportedFor(key, pod);
    const failures: string[] = [];
    const shapedInPod: string[] = [];
    const shapedBy = new Set<string>();
    for (const record of records) {
      const outcome = await this.converge(pod, record, resolveForNetwork(selecting, record.network));
      if (outcome.result === 'gone') continue;
      this.metrics.reconciles.inc({ result: outcome.result });
      if (record.site === 'pod') shapedInPod.push(record.ifname);
      for (const name of outcome.shapedBy ?? []) shapedBy.add(name);
      if (outcome.error) failures.push(`${record.ifname}: ${outcome.error}`);
      if (outcome.refusal?.policies?.length && this.policies) {
        for (const name of outcome.refusal.policies) await this.policies.refuse(name, outcome.refusal.kind, outcome.refusal.message);
      } else if (outcome.refusal) {
        await this.postOnce(pod, reported, REASONS[outcome.refusal.kind], refusalMessage(outcome.refusal.message));
      }
      if (outcome.healed) {
        this.metrics.driftHealed.inc();
        await this.events.post(pod, REASONS.driftHealed, driftMessage(record.ifname, record.network, outcome.healed.commands));
      }
    }
    this.policies?.shaping(key, [...shapedBy]);
    if (pod.privileges.length && shapedInPod.length) await this.postOnce(pod, reported, REASONS.bypassable, bypassMessage(pod.privileges, shapedInPod));
    if (failures.length) throw new Error(`${failures.length} of ${records.length} attachments of ${key} failed: ${failures[0]}`);
  }

  private async converge(pod: PodView, record: AttachmentView, policy: BandwidthPolicyInput | undefined): Promise<Outcome> {
    const ref: AttachmentRef = { containerId: record.containerId, ifname: record.ifname };
    const fields = { namespace: pod.namespace, pod: pod.name, containerId: ref.containerId, ifname: ref.ifname, network: record.network };
    const stopTimer = this.metrics.applySeconds.startTimer();
    try {
      const runtime = this.deps.runtimeFromAnnotations(pod.annotations);
      const converged = await this.deps.applyPodInputs(ref, { ...(runtime ? { runtime } : {}), annotations: pod.annotations, ...(policy ? { policy } : {}) }, this.log);
      if (converged.changed && converged.policyChanged) {
        this.log.info({ ...fields, annotations: pod.annotations, policies: policiesIn(policy), lines: converged.commands.length }, 'applied the pod annotations');
        return { result: 'applied', ...(converged.shapedBy ? { shapedBy: converged.shapedBy } : {}) };
      }
      return this.settled(fields, converged);
    } catch (error) {
      if (isGone(error)) {
        this.log.debug({ ...fields, error: (error as Error).message }, 'the attachment went away while being converged');
        return { result: 'gone' };
      }
      const message = error instanceof Error ? error.message : String(error);
      if (error instanceof ConfigError || error instanceof AdmissionError) {
        const kind: Refusal = error instanceof ConfigError ? 'invalid' : 'not_admitted';
        const policies = blamedPolicies(error, policy, pod, record.network);
        if (!policies.length) this.log.warn({ ...fields, error: message }, kind === 'invalid' ? 'refused the pod annotations; the running shaping is kept' : 'the uplink cannot admit the pod annotations; the running shaping is kept');
        // the running shaping is still the desired state: put it right if it drifted
        const kept = await this.keepInForce(ref, fields);
        return { ...kept, result: kind, refusal: { kind, message, ...(policies.length ? { policies } : {}) } };
      }
      this.metrics.errors.inc({ kind: 'apply' });
      this.log.error({ ...fields, error: message }, 'converging the attachment failed; will retry');
      return { result: 'failed', error: message };
    } finally {
      stopTimer();
    }
  }

  /** After a refusal: converges on the inputs the record holds; never throws (the refusal is what is reported). */
  private async keepInForce(ref: AttachmentRef, fields: object): Promise<Partial<Outcome>> {
    try {
      const converged = await this.deps.keepInForce(ref, this.log);
      return this.settled(fields, converged);
    } catch (error) {
      if (!isGone(error)) this.log.error({ ...fields, error: (error as Error).message }, 'converging on the running shaping failed');
      return {};
    }
  }

  /** A converge that kept the policy: nothing ran, or drift was healed. */
  private settled(fields: object, converged: Converged): Outcome {
    const shapedBy = converged.shapedBy ? { shapedBy: converged.shapedBy } : {};
    if (!converged.changed) return { result: 'unchanged', ...shapedBy };
    this.log.warn({ ...fields, commands: converged.commands }, 'the shaping had been changed outside tcqos: restored it');
    return { result: 'healed', healed: converged, ...shapedBy };
  }

  private reportedFor(key: string, pod: PodView): Reported {
    const annotations = JSON.stringify(pod.annotations);
    let reported = this.reported.get(key);
    if (!reported || reported.uid !== pod.uid) {
      reported = { uid: pod.uid, annotations, keys: new Set() };
      this.reported.set(key, reported);
    } else if (reported.annotations !== annotations) {
      // refusals of earlier annotations may be due again if they come back
      reported = { uid: pod.uid, annotations, keys: new Set([...reported.keys].filter((known) => known.startsWith(`${REASONS.bypassable}\n`))) };
      this.reported.set(key, reported);
    }
    return reported;
  }

  private async postOnce(pod: PodView, reported: Reported, reason: Reason, message: string): Promise<void> {
    const key = `${reason}\n${message}`;
    if (reported.keys.has(key)) return;
    reported.keys.add(key);
    await this.events.post(pod, reason, message);
  }
}

/**
 * The BandwidthPolicies a refusal is due to: those named by the complaint, or, when an uplink
 * cannot admit the result, those in force for the attachment where no annotation of the pod is.
 */
function blamedPolicies(error: unknown, policy: BandwidthPolicyInput | undefined, pod: PodView, network: string): string[] {
  if (error instanceof ConfigError) return error.source?.startsWith('BandwidthPolicy ') ? [error.source.slice('BandwidthPolicy '.length)] : [];
  const annotated = Object.hasOwn(pod.annotations, POLICY_ANNOTATION) || Object.hasOwn(pod.annotations, `${POLICY_ANNOTATION}.${network}`);
  return annotated ? [] : policiesIn(policy);
}

function isGone(error: unknown): boolean {
  return error instanceof AttachmentNotFoundError || (error instanceof NetnsUnusableError && error.reason === 'missing');
}
