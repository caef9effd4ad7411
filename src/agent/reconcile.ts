/**
 * Brings one pod's attachments in line with its shaping annotations. An attachment is applied to
 * only when the pod's annotations differ from the ones last applied to it: the agent's memory of
 * its own applies, or, for an attachment it has not touched yet (after a start), the annotations
 * its record says are in force. So a resync or relist re-applies nothing, and an edit made while
 * the agent was down is applied once when it starts.
 *
 * An invalid annotation (ConfigError) changes nothing (the use case refuses it before touching
 * tc), is reported on the pod as an Event, and is remembered as applied: it is not tried again
 * until the annotations change. A policy the uplink cannot admit (AdmissionError) is reported the
 * same way but tried again at each resync (another pod may leave room). Any other failure is
 * logged and tried again at the next event or resync. An Event is posted once per message.
 */
import { AdmissionError } from '../attachment/errors.ts';
import { ConfigError } from '../config/errors.ts';
import type { Logger } from '../log.ts';
import type { AgentDeps, AttachmentRef, AttachmentView } from './deps.ts';
import type { PodEvents, Refusal } from './events.ts';
import type { AgentMetrics, ReconcileResult } from './metrics.ts';
import { shapingAnnotations } from '../config/kubernetes-bandwidth.ts';
import { fingerprint, podKey, type PodView } from './pods.ts';

interface Applied {
  readonly uid: string | undefined;
  /** Attachment key -> fingerprint of the annotations last applied to it. */
  readonly attachments: Map<string, string>;
  /** The Events posted on the pod (fingerprint and message), so none is posted twice. */
  readonly reported: Set<string>;
}

interface Outcome {
  readonly result: ReconcileResult;
  readonly refusal?: { readonly kind: Refusal; readonly message: string };
}

export class Reconciler {
  private readonly deps: AgentDeps;
  private readonly events: PodEvents;
  private readonly metrics: AgentMetrics;
  private readonly log: Logger;
  private readonly applied = new Map<string, Applied>();

  constructor(deps: AgentDeps, events: PodEvents, metrics: AgentMetrics, log: Logger) {
    this.deps = deps;
    this.events = events;
    this.metrics = metrics;
    this.log = log;
  }

  async reconcile(pod: PodView): Promise<void> {
    const wanted = fingerprint(pod.annotations);
    const memory = this.memoryOf(pod);
    // a record of an earlier pod of the same name (its sandbox not deleted yet) is not this pod's
    const records = this.deps.findByPod(pod.namespace, pod.name).filter((record) => !pod.uid || !record.pod?.uid || record.pod.uid === pod.uid);
    // an Event for earlier annotations may be due again if they come back
    for (const reportKey of memory.reported) if (!reportKey.startsWith(`${wanted}\n`)) memory.reported.delete(reportKey);
    const refusals = new Map<string, NonNullable<Outcome['refusal']>>();
    for (const record of records) {
      const key = attachmentKey(record);
      // after a start the record says what is in force: the annotations ADD (or an earlier agent) applied
      if ((memory.attachments.get(key) ?? fingerprint(shapingAnnotations(record.annotations))) === wanted) continue;
      const outcome = await this.apply(pod, record);
      this.metrics.reconciles.inc({ result: outcome.result });
      if (outcome.result !== 'failed' && outcome.result !== 'not_admitted') memory.attachments.set(key, wanted);
      if (outcome.refusal) refusals.set(`${wanted}\n${outcome.refusal.message}`, outcome.refusal);
    }
    const current = new Set(records.map(attachmentKey));
    for (const key of memory.attachments.keys()) if (!current.has(key)) memory.attachments.delete(key);
    // one Event per message: two attachments refusing the same annotation make one
    for (const [reportKey, refusal] of refusals) {
      if (memory.reported.has(reportKey)) continue;
      memory.reported.add(reportKey);
      await this.events.refused(pod, refusal.kind, refusal.message);
    }
  }

  /** The pod is gone: its memory goes too (a pod of the same name later starts afresh). */
  forget(pod: { readonly namespace: string; readonly name: string }): void {
    this.applied.delete(podKey(pod));
  }

  /** Attachments whose records were dropped. */
  forgetAttachments(records: readonly AttachmentView[]): void {
    for (const record of records) {
      if (record.pod) this.applied.get(podKey(record.pod))?.attachments.delete(attachmentKey(record));
    }
  }

  private memoryOf(pod: PodView): Applied {
    const key = podKey(pod);
    let memory = this.applied.get(key);
    if (!memory || memory.uid !== pod.uid) {
      memory = { uid: pod.uid, attachments: new Map(), reported: new Set() };
      this.applied.set(key, memory);
    }
    return memory;
  }

  private async apply(pod: PodView, record: AttachmentView): Promise<Outcome> {
    const ref: AttachmentRef = { containerId: record.containerId, ifname: record.ifname };
    const fields = { namespace: pod.namespace, pod: pod.name, containerId: ref.containerId, ifname: ref.ifname, network: record.network };
    const stopTimer = this.metrics.applySeconds.startTimer();
    try {
      const runtime = this.deps.runtimeFromAnnotations(pod.annotations);
      const outcome = await this.deps.applyPodInputs(ref, { ...(runtime ? { runtime } : {}), annotations: pod.annotations }, this.log);
      this.log.info({ ...fields, annotations: pod.annotations, changed: outcome.changed }, outcome.changed ? 'applied the pod annotations' : 'pod annotations already in force');
      return { result: outcome.changed ? 'applied' : 'unchanged' };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (error instanceof ConfigError) {
        this.log.warn({ ...fields, error: message }, 'refused the pod annotations; the running shaping is kept');
        return { result: 'invalid', refusal: { kind: 'invalid', message } };
      }
      if (error instanceof AdmissionError) {
        this.log.warn({ ...fields, error: message }, 'the uplink cannot admit the pod annotations; the running shaping is kept, will retry');
        return { result: 'not_admitted', refusal: { kind: 'not_admitted', message } };
      }
      this.metrics.errors.inc({ kind: 'apply' });
      this.log.error({ ...fields, error: message }, 'applying the pod annotations failed; will retry');
      return { result: 'failed' };
    } finally {
      stopTimer();
    }
  }
}

function attachmentKey(ref: AttachmentRef): string {
  return `${ref.containerId}/${ref.ifname}`;
}

