/**
 * Adding and removing an attachment on the node: the kernel state and its registry record move
 * together. A record is written (and the uplink share admitted) before anything is installed, and
 * removed again if installing fails, so no attachment is ever shaped without a record.
 */
import { policyToJson } from '../config/policy-json.ts';
import type { DerivedPolicy, PolicySource } from '../config/policy.ts';
import type { Logger } from '../log.ts';
import type { NetnsSession } from '../netns/session.ts';
import { assignAttachmentClassIds } from '../plan/class-ids.ts';
import type { AttachmentPlan } from '../plan/tree.ts';
import { lockPath, withLock } from '../state/lock.ts';
import type { AttachmentRecord, AttachmentRef } from '../state/record.ts';
import type { Registry } from '../state/registry.ts';
import { admitAndRecord } from './admission.ts';
import { removeShaping } from './remove.ts';
import { shapeAttachment } from './shape.ts';

/** Who the attachment is and its inputs as they will be kept, with the policy derived from them. */
export type NewAttachment = Pick<AttachmentRecord, 'containerId' | 'ifname' | 'netns' | 'network' | 'pod' | 'config' | 'runtime' | 'annotations'> & {
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
    policy: policyToJson(derived.policy),
    sources,
    classIds: assignAttachmentClassIds(derived.policy),
    ...(derived.settings.uplink ? { uplink: derived.settings.uplink } : {}),
    createdAt: now,
    updatedAt: now,
  };
}

/** ADD: admit, record, shape; on failure nothing stays (no tc state, no record, no share). */
export async function attach(registry: Registry, session: NetnsSession, attachment: NewAttachment, log: Logger): Promise<AttachmentPlan> {
  return withAttachmentLock(registry, session, attachment, async () => {
    const record = newRecord(attachment);
    await admitAndRecord(registry, record, session.runner);
    try {
      return await shapeAttachment(session, { ifname: attachment.ifname, policy: attachment.derived.policy, classIds: record.classIds }, log);
    } catch (error) {
      registry.remove(record);
      throw error;
    }
  });
}

/** Runs `work` holding the attachment's lock, waiting for it the way the session runs its tools. */
export function withAttachmentLock<T>(registry: Registry, session: NetnsSession, ref: AttachmentRef, work: () => Promise<T>): Promise<T> {
  return withLock(lockPath(registry.stateDir, session.path, ref.ifname), work, { runner: session.runner });
}

/** DEL: remove the shaping and the record; true when there was an ifb. */
export async function detach(registry: Registry, session: NetnsSession, ref: AttachmentRef): Promise<boolean> {
  return withAttachmentLock(registry, session, ref, async () => {
    const removedIfb = await removeShaping(session, ref.ifname);
    registry.remove(ref);
    return removedIfb;
  });
}

/**
 * DEL when the netns is already gone: only the record, and the lock file of a killed command, can be
 * left. Taken under the lock, which unlinks that file (runtimes before CNI 1.1 never call GC).
 */
export async function forget(registry: Registry, ref: AttachmentRef, netns: string): Promise<void> {
  if (!netns) {
    registry.remove(ref);
    return;
  }
  await withLock(lockPath(registry.stateDir, netns, ref.ifname), async () => registry.remove(ref));
}
