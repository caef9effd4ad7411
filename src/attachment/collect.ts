/**
 * Garbage collection (CNI GC, and the node agent's sweep): attachments the runtime no longer knows
 * lose their shaping and their record; records of pods that are gone are dropped.
 */
import type { Logger } from '../log.ts';
import { withNetns, type SessionOptions } from '../netns/session.ts';
import { removeUnheldLocks } from '../state/lock.ts';
import type { AttachmentRecord, AttachmentRef } from '../state/record.ts';
import { pathExists, type Registry } from '../state/registry.ts';
import { detach, forget } from './attach.ts';

export interface Collected {
  /** Attachments whose shaping was removed (their netns still existed). */
  readonly unshaped: readonly AttachmentRef[];
  /** Records dropped: their netns was gone, or they could not be read. */
  readonly dropped: number;
}

/**
 * Every attachment of `network` not in `valid` loses its shaping and record; other networks are
 * left alone. Without a `valid` list (a caller that knows no attachments) only the records of
 * vanished pods, unreadable records and dead commands' locks go.
 */
export async function collectGarbage(
  registry: Registry,
  network: string,
  valid: readonly AttachmentRef[] | undefined,
  log: Logger,
  tools: SessionOptions = {},
): Promise<Collected> {
  const keep = new Set((valid ?? []).map((ref) => `${ref.containerId}\0${ref.ifname}`));
  const unshaped: AttachmentRef[] = [];
  const problems = registry.dropUnreadable();
  for (const problem of problems) log.warn({}, `dropped an unreadable registry record: ${problem}`);
  const gone = await forgetGone(registry, log, tools);
  registry.dropAbandonedTemps();
  for (const record of valid ? registry.list().records : []) {
    if (record.network !== network || keep.has(`${record.containerId}\0${record.ifname}`)) continue;
    if (!pathExists(record.netns)) continue;
    try {
      await withNetns(record.netns, tools, (session) => detach(registry, session, record, log, tools));
      unshaped.push(record);
    } catch (error) {
      log.warn({ err: error, containerId: record.containerId, ifname: record.ifname }, 'GC could not remove a stale attachment');
    }
  }
  await removeUnheldLocks(registry.stateDir, tools.runner);
  return { unshaped, dropped: problems.length + gone.length };
}

/**
 * The attachments whose pod netns is gone (the pod is gone; only its DEL is late or will never
 * come): their host ends' ifbs, which outlive the pod in the node's namespace, and their records.
 * Returns the records forgotten.
 */
export async function forgetGone(registry: Registry, log: Logger, tools: SessionOptions = {}): Promise<AttachmentRecord[]> {
  const gone = registry.list().records.filter((record) => !pathExists(record.netns));
  const forgotten: AttachmentRecord[] = [];
  for (const record of gone) {
    try {
      await forget(registry, record, record.netns, log, tools);
      forgotten.push(record);
    } catch (error) {
      log.warn({ err: error, containerId: record.containerId, ifname: record.ifname }, 'could not remove what is left of a gone attachment');
    }
  }
  return forgotten;
}
