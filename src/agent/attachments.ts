/**
 * The registry's records by pod, for the workers. Reading the registry means reading every record
 * file, so a lookup per pod that read them all made a resync pass cost N² file reads. Here one
 * reading serves every lookup for a second: a pass over N pods reads the N files a few times, not N
 * times. A lookup for a pod that changed after the last reading reads again, so an edit is never
 * applied against an older set of attachments than the edit itself; a record ADD wrote in the last
 * second may be missed by a resync, and that ADD applied the pod's annotations itself.
 */
import type { AttachmentView } from './deps.ts';
import { podKey } from './pods.ts';

const MAX_AGE_MS = 1000;

export class AttachmentIndex {
  private readonly list: () => readonly AttachmentView[];
  private readonly now: () => number;
  private byPod = new Map<string, AttachmentView[]>();
  private readAt = Number.NEGATIVE_INFINITY;

  constructor(list: () => readonly AttachmentView[], now: () => number = Date.now) {
    this.list = list;
    this.now = now;
  }

  /** The pod's attachments, from a reading of the registry taken after `changedAt` (ms) and at most a second old. */
  forPod(pod: { readonly namespace: string; readonly name: string }, changedAt = Number.NEGATIVE_INFINITY): readonly AttachmentView[] {
    const now = this.now();
    if (now - this.readAt > MAX_AGE_MS || this.readAt <= changedAt) this.read(now);
    return this.byPod.get(podKey(pod)) ?? [];
  }

  /** The next lookup reads the registry again (a record was added). */
  invalidate(): void {
    this.readAt = Number.NEGATIVE_INFINITY;
  }

  private read(now: number): void {
    const byPod = new Map<string, AttachmentView[]>();
    for (const record of this.list()) {
      if (!record.pod) continue;
      const key = podKey(record.pod);
      const known = byPod.get(key);
      if (known) known.push(record);
      else byPod.set(key, [record]);
    }
    this.byPod = byPod;
    this.readAt = now;
  }
}
