/**
 * Adding and removing an attachment on the node: the kernel state and its registry record move
 * together. A record is written (and the uplink share admitted) before anything is installed, and
 * removed again if installing fails, so no attachment is ever shaped without a record.
 */
import { policyToJson } from '../config/policy-json.ts';
import type { DerivedPolicy, PolicySource, Settings } from '../config/policy.ts';
import type { Logger } from '../log.ts';
import type { ToolRunner } from '../netns/runner.ts';
import { ownNetnsIdentity, type NetnsSession, type SessionOptions } from '../netns/session.ts';
import { assignAttachmentClassIds } from '../plan/class-ids.ts';
import type { AttachmentPlan } from '../plan/tree.ts';
import { lockPath, withLock } from '../state/lock.ts';
import type { AttachmentRecord, AttachmentRef, HostEnd } from '../state/record.ts';
import type { Registry } from '../state/registry.ts';
import { admitAndRecord } from './admission.ts';
import { removeShaping } from './remove.ts';
import { shapeAttachment } from './shape.ts';
import { withHostEnd, withSite } from './site.ts';
import { convergeUplink, enforcedUplinkOf, uplinkClassFor, type UplinkTarget } from './uplink.ts';

/** Who the attachment is and its inputs as they will be kept, with the policy derived from them. */
export type NewAttachment = Pick<AttachmentRecord, 'containerId' | 'ifname' | 'netns' | 'network' | 'pod' | 'config' | 'runtime' | 'annotations' | 'bandwidthPolicy' | 'host' | 'uplinkClass'> & {
  readonly derived: DerivedPolicy;
};

export function newRecord(attachment: NewAttachment, now = new Date().toISOString()): AttachmentRecord {
  const { derived } = attachment;
  const sources: { egress?: PolicySource; ingress?: PolicySource } = { ...derived.sources };
  return {
    version: 1,
    containerId: attachment.containerId,
    ifname: attachment.ifname,
    netns: attachment.netns,
    network: attachment.network,
    ...(attachment.pod ? { pod: attachment.pod } : {}),
    config: attachment.config,
    ...(attachment.runtime ? { runtime: attachment.runtime } : {}),
    ...(attachment.annotations && Object.keys(attachment.annotations).length ? { annotations: attachment.annotations } : {}),
    ...(attachment.bandwidthPolicy ? { bandwidthPolicy: attachment.bandwidthPolicy } : {}),
    policy: policyToJson(derived.policy),
    sources,
    classIds: assignAttachmentClassIds(derived.policy),
    ...(attachment.host ? { host: attachment.host } : {}),
    ...(derived.settings.uplink ? { uplink: derived.settings.uplink } : {}),
    ...(attachment.uplinkClass ? { uplinkClass: attachment.uplinkClass } : {}),
    node: ownNetnsIdentity(),
    createdAt: now,
    updatedAt: now,
  };
}

/** Where the host end is when no record says (found only when needed: it costs a process). */
export type UnrecordedHostEnd = () => Promise<HostEnd | undefined>;

/**
 * ADD: admit, record, shape at its site, then converge the uplink's tree when it is enforced; on
 * failure nothing stays (no tc state, no record, no share, no class on the uplink).
 */
export async function attach(registry: Registry, pod: NetnsSession, attachment: NewAttachment, log: Logger, tools: SessionOptions): Promise<AttachmentPlan> {
  return withAttachmentLock(registry, pod.path, attachment, pod.runner, async () => {
    const { settings } = attachment.derived;
    const enforced = settings.uplink?.enforce && !attachment.host ? settings.uplink : undefined;
    const uplinkClass = enforced && (await uplinkClassFor(pod, attachment.ifname, enforced, podCgroupOf(attachment, settings), tools));
    const record = await admitAndRecord(registry, newRecord({ ...attachment, ...(uplinkClass ? { uplinkClass } : {}) }), pod.runner);
    const onUplink = enforcedUplinkOf(record);
    let shaped = false;
    try {
      const plan = await withSite(record, pod, tools, ({ session, ifname, site }) =>
        shapeAttachment(session, { ifname, site, policy: attachment.derived.policy, classIds: record.classIds }, log),
      );
      shaped = true;
      if (onUplink) await convergeUplink(registry, onUplink, log, tools);
      return plan;
    } catch (error) {
      registry.remove(record);
      if (shaped) await undo(registry, pod, record, onUplink, log, tools);
      throw error;
    }
  });
}

/** Where the pod's cgroup is looked for: its UID under kubelet's cgroup root. */
export function podCgroupOf(record: Pick<AttachmentRecord, 'pod'>, settings: Pick<Settings, 'cgroupRoot'>): { uid?: string; cgroupRoot?: string } {
  return { ...(record.pod?.uid ? { uid: record.pod.uid } : {}), ...(settings.cgroupRoot ? { cgroupRoot: settings.cgroupRoot } : {}) };
}

/** What a failed ADD had installed goes again: its site's shaping, its class on the uplink. */
async function undo(registry: Registry, pod: NetnsSession, record: AttachmentRecord, uplink: UplinkTarget | undefined, log: Logger, tools: SessionOptions): Promise<void> {
  try {
    await withSite(record, pod, tools, ({ session, ifname }) => removeShaping(session, ifname));
    if (uplink) await convergeUplink(registry, uplink, log, tools);
  } catch (error) {
    log.error({ err: error }, 'removing what a failed ADD installed failed too');
  }
}

/** The uplink's tree is converged again after an attachment on it went. */
async function reconvergeUplinkOf(registry: Registry, record: AttachmentRecord | undefined, log: Logger, tools: SessionOptions): Promise<void> {
  const uplink = enforcedUplinkOf(record);
  if (uplink) await convergeUplink(registry, uplink, log, tools);
}

/** Runs `work` holding the attachment's lock, waiting for it the way the caller runs its tools. */
export function withAttachmentLock<T>(registry: Registry, netns: string, ref: AttachmentRef, runner: ToolRunner | undefined, work: () => Promise<T>): Promise<T> {
  return withLock(
    lockPath(registry.stateDir, netns, ref.ifname),
    () => {
      // every writer of the record holds this lock: a temp file of it now is a killed writer's
      registry.dropTempsOf(ref);
      return work();
    },
    { runner },
  );
}

/**
 * DEL: remove the shaping at the attachment's site and its record; true when there was an ifb.
 * Without a readable record, the host end the chain's result names (if any) is cleaned as well.
 */
export async function detach(
  registry: Registry,
  pod: NetnsSession,
  ref: AttachmentRef,
  log: Logger,
  tools: SessionOptions,
  hostEnd?: UnrecordedHostEnd,
): Promise<boolean> {
  return withAttachmentLock(registry, pod.path, ref, pod.runner, async () => {
    const { record } = registry.read(ref);
    const host = record?.host ?? (await hostEnd?.());
    const removedIfb = await withSite({ ifname: ref.ifname, ...(host ? { host } : {}) }, pod, tools, ({ session, ifname }) => removeShaping(session, ifname));
    registry.remove(ref);
    await reconvergeUplinkOf(registry, record, log, tools);
    return removedIfb;
  });
}

/**
 * DEL when the pod's netns is already gone: its own shaping went with it, and so did the host end
 * of its veth, but not that host end's ifb, which lives in the node's namespace. Taken under the
 * attachment's lock, which unlinks the lock file a killed command left (runtimes before CNI 1.1
 * never call GC).
 */
export async function forget(registry: Registry, ref: AttachmentRef, netns: string, log: Logger, tools: SessionOptions, hostEnd?: UnrecordedHostEnd): Promise<void> {
  const work = async () => {
    const { record } = registry.read(ref);
    const host = record?.host ?? (await hostEnd?.());
    if (host) await withHostEnd(host, tools, ({ session, ifname }) => removeShaping(session, ifname));
    registry.remove(ref);
    await reconvergeUplinkOf(registry, record, log, tools);
  };
  if (!netns) await work();
  else await withAttachmentLock(registry, netns, ref, tools.runner, work);
}
