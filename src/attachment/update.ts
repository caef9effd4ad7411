/**
 * Changing a running attachment's policy: the operator replaces the admin's caps (`tcqos update`),
 * the node agent replaces the pod's inputs (annotations, the BandwidthPolicies selecting it). Either way the policy in force is derived
 * again by the same rules as at ADD (pod values tighten the caps, never loosen them), admitted on
 * the uplink, applied in place, and recorded.
 */
import { isDeepStrictEqual } from 'node:util';
import { derivePolicy } from '../config/derive.ts';
import { hasBandwidthAnnotations, shapingAnnotations } from '../config/kubernetes-bandwidth.ts';
import { policyFromJson, policyToJson } from '../config/policy-json.ts';
import type { BandwidthPolicyInput, DerivedPolicy, PolicySource } from '../config/policy.ts';
import type { Logger } from '../log.ts';
import { withNetns, type NetnsSession, type SessionOptions } from '../netns/session.ts';
import { assignAttachmentClassIds } from '../plan/class-ids.ts';
import type { AttachmentRecord, AttachmentRef } from '../state/record.ts';
import type { Registry } from '../state/registry.ts';
import { admitAndRecord, checkAdmission } from './admission.ts';
import { withSite } from './site.ts';
import { convergeUplink, enforcedUplinkOf, uplinkClassFor } from './uplink.ts';
import { keepingCounts } from './carry.ts';
import { podCgroupOf, withAttachmentLock } from './attach.ts';
import { AttachmentNotFoundError, UnreadableRecordError } from './errors.ts';
import { applyReshape, planReshape, reshapeAttachment, type PlannedReshape } from './reshape.ts';

export interface UpdateOutcome {
  /** Whether any tc line ran (or, in a dry run, would run). */
  readonly changed: boolean;
  /** The record before the change, and after it (in a dry run: as it would be; nothing is written). */
  readonly previous: AttachmentRecord;
  readonly record: AttachmentRecord;
  /** The tc lines run (or, in a dry run, that would run). */
  readonly commands: readonly string[];
}

/** How a change runs: its log, how its tools run, and whether it only works out what it would do. */
export interface ChangeOptions {
  readonly log: Logger;
  readonly tools?: SessionOptions;
  readonly dryRun?: boolean;
}

type Inputs = Pick<AttachmentRecord, 'config' | 'runtime' | 'annotations' | 'bandwidthPolicy'>;

/** Operator: `config` becomes the attachment's caps (any valid value: the node's root may loosen). */
export async function applyOperatorConfig(registry: Registry, ref: AttachmentRef, config: Record<string, unknown>, options: ChangeOptions): Promise<UpdateOutcome> {
  return changeAttachment(registry, ref, (record) => ({ ...inputsOf(record), config: { ...config, name: record.network } }), 'operator', options);
}

/**
 * Node agent: the pod's current annotations (and the runtime values the kubernetes.io/*-bandwidth
 * ones imply) and the BandwidthPolicies resolved for the attachment, under the recorded caps.
 * Runtime values that did not come from those annotations (Multus's per-network `bandwidth`, say)
 * are kept: the annotations cannot speak for them.
 */
export async function applyPodInputs(
  registry: Registry,
  ref: AttachmentRef,
  inputs: { readonly runtime?: Record<string, unknown>; readonly annotations?: Readonly<Record<string, string>>; readonly policy?: BandwidthPolicyInput },
  options: ChangeOptions,
): Promise<UpdateOutcome> {
  const annotations = inputs.annotations && shapingAnnotations(inputs.annotations);
  return changeAttachment(
    registry,
    ref,
    (record) => {
      const runtimeFromAnnotations = !record.runtime || hasBandwidthAnnotations(record.annotations) || hasBandwidthAnnotations(annotations);
      const runtime = runtimeFromAnnotations ? inputs.runtime : record.runtime;
      return {
        config: record.config,
        ...(runtime ? { runtime } : {}),
        ...(annotations && Object.keys(annotations).length ? { annotations } : {}),
        ...(inputs.policy ? { bandwidthPolicy: inputs.policy } : {}),
      };
    },
    undefined,
    options,
  );
}

/** The trees of the uplinks the attachment was and is on, converged on the registry (its new record written). */
async function convergeUplinks(registry: Registry, before: AttachmentRecord, after: AttachmentRecord, log: Logger, tools: SessionOptions): Promise<string[]> {
  const lines: string[] = [];
  const now = enforcedUplinkOf(after);
  const then = enforcedUplinkOf(before);
  if (now) lines.push(...(await convergeUplink(registry, now, log, tools)).lines);
  if (then && then.name !== now?.name) lines.push(...(await convergeUplink(registry, then, log, tools)).lines);
  return lines;
}

function inputsOf(record: AttachmentRecord): Inputs {
  return {
    config: record.config,
    ...(record.runtime ? { runtime: record.runtime } : {}),
    ...(record.annotations ? { annotations: record.annotations } : {}),
    ...(record.bandwidthPolicy ? { bandwidthPolicy: record.bandwidthPolicy } : {}),
  };
}

function readRecord(registry: Registry, ref: AttachmentRef): AttachmentRecord {
  const { record, problem } = registry.read(ref);
  if (problem) throw new UnreadableRecordError(`the registry record of ${ref.containerId}/${ref.ifname} cannot be read (${problem}): DEL and ADD the attachment again`);
  if (!record) throw new AttachmentNotFoundError(ref, registry.stateDir);
  return record;
}

async function changeAttachment(
  registry: Registry,
  ref: AttachmentRef,
  edit: (record: AttachmentRecord) => Inputs,
  /** Who set the caps, when the caps change ('operator'); undefined keeps what the record says. */
  capsSetBy: PolicySource | undefined,
  { log, tools = {}, dryRun = false }: ChangeOptions,
): Promise<UpdateOutcome> {
  const found = readRecord(registry, ref);
  return withNetns(found.netns, tools, async (pod) => {
    // Worked out first without the lock: a dry run stops there, and so does a change that would
    // change nothing (the agent's every resync), which then costs no lock and no write.
    const probe = await workedOut(registry, pod, ref, found, edit(found), capsSetBy, log, tools);
    if (dryRun) return probe.outcome;
    if (!probe.outcome.changed && sameRecord(probe.outcome.record, found)) return { changed: false, previous: found, record: found, commands: [] };
    return withAttachmentLock(registry, pod.path, ref, pod.runner, async () => {
      const current = readRecord(registry, ref);
      // Unless another tcqos changed the attachment since, what the probe read and worked out holds.
      const { recorded, derived, planned } = sameRecord(current, found) ? probe : await workedOut(registry, pod, ref, current, edit(current), capsSetBy, log, tools, false);
      return withSite(current, pod, tools, async ({ session, ifname, site }) => {
        const admitted = await admitAndRecord(registry, recorded, session.runner);
        try {
          const target = { ifname, site, policy: derived.policy, classIds: recorded.classIds };
          const { result: reshaped, counters } = await keepingCounts(session, target, current, admitted, log, async () => applyReshape(session, planned ?? (await planReshape(session, target)), log));
          let final = admitted;
          if (counters !== admitted.counters) {
            const { counters: _replaced, ...rest } = admitted;
            final = counters ? { ...rest, counters } : rest;
            registry.write(final);
          }
          const onUplink = await convergeUplinks(registry, current, final, log, tools);
          const commands = [...reshaped.lines, ...onUplink];
          return { changed: commands.length > 0, previous: current, record: final, commands };
        } catch (error) {
          // Put back what was in force: the record first, then (best effort) the kernel.
          registry.write(current);
          const previous = { ifname, site, policy: await policyFromJson(current.policy), classIds: current.classIds };
          await reshapeAttachment(session, previous, log).catch((restoreError: unknown) =>
            log.error({ err: restoreError }, 'restoring the previous shaping after a failed update failed too'),
          );
          throw error;
        }
      });
    });
  });
}

/** The same record but for when it was written. */
function sameRecord(a: AttachmentRecord, b: AttachmentRecord): boolean {
  const { updatedAt: _a, ...restA } = a;
  const { updatedAt: _b, ...restB } = b;
  return isDeepStrictEqual(JSON.parse(JSON.stringify(restA)), JSON.parse(JSON.stringify(restB)));
}

/**
 * The record `inputs` make from `current` (the policy derived again by ADD's rules, class ids kept,
 * the uplink class kept while on the same enforced uplink) and, unless `planLines` is false, what
 * applying it would run: the site's and the uplink's tc lines, read from the kernel, nothing changed.
 */
async function workedOut(
  registry: Registry,
  pod: NetnsSession,
  ref: AttachmentRef,
  current: AttachmentRecord,
  inputs: Inputs,
  capsSetBy: PolicySource | undefined,
  log: Logger,
  tools: SessionOptions,
  planLines = true,
): Promise<{ recorded: AttachmentRecord; derived: DerivedPolicy; outcome: UpdateOutcome; planned?: PlannedReshape }> {
  const { bandwidthPolicy, ...rest } = inputs;
  const derived = await derivePolicy({ ...rest, ...(bandwidthPolicy ? { policy: bandwidthPolicy } : {}) });
  const sources: { egress?: PolicySource; ingress?: PolicySource } = {};
  for (const [direction, source] of Object.entries(derived.sources) as Array<['egress' | 'ingress', PolicySource]>) {
    const capsSource = capsSetBy ?? (current.sources[direction] === 'operator' ? 'operator' : 'config');
    sources[direction] = source === 'config' ? capsSource : source;
  }
  const classIds = assignAttachmentClassIds(derived.policy, current.classIds);
  // What the new inputs leave out must not survive from the old record.
  const { runtime: _runtime, annotations: _annotations, bandwidthPolicy: _policy, uplink: _uplink, uplinkClass: _class, ...kept } = current;
  const uplink = derived.settings.uplink;
  const enforced = uplink?.enforce && !current.host ? uplink : undefined;
  // the class on the uplink's tree is kept while the attachment stays on the same enforced uplink
  const uplinkClass =
    enforced &&
    (current.uplinkClass && current.uplink?.name === enforced.name
      ? current.uplinkClass
      : await uplinkClassFor(pod, ref.ifname, enforced, { ...podCgroupOf(current, derived.settings), ...(current.node ? { node: current.node } : {}) }, tools));
  const recorded: AttachmentRecord = {
    ...kept,
    ...inputs,
    policy: policyToJson(derived.policy),
    sources,
    classIds,
    ...(uplink ? { uplink } : {}),
    ...(uplinkClass ? { uplinkClass } : {}),
    updatedAt: new Date().toISOString(),
  };
  if (!planLines) return { recorded, derived, outcome: { changed: true, previous: current, record: recorded, commands: [] } };
  checkAdmission(registry, recorded);
  const planned = await withSite(current, pod, tools, ({ session, ifname, site }) => planReshape(session, { ifname, site, policy: derived.policy, classIds }));
  const target = enforcedUplinkOf(recorded);
  const onUplink = target ? (await convergeUplink(registry, target, log, tools, { dryRun: true, assuming: recorded })).lines : [];
  const commands = [...planned.lines, ...onUplink];
  return { recorded, derived, planned, outcome: { changed: commands.length > 0, previous: current, record: recorded, commands } };
}
