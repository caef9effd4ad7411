/**
 * Uplink admission: per direction, the guaranteed rates of every attachment naming an uplink add
 * up to at most its capacity. Decided and recorded under the uplink's lock, so concurrent ADDs
 * and updates are admitted exactly (ten ADDs of 15 Mbit/s on 100 Mbit/s: six).
 */
import { DIRECTIONS, guaranteeable, type PolicyJson } from '../config/policy.ts';
import type { ToolRunner } from '../netns/runner.ts';
import { uplinkLockPath, withLock } from '../state/lock.ts';
import type { AttachmentRecord, AttachmentRef } from '../state/record.ts';
import { pathExists, type Registry } from '../state/registry.ts';
import { FIRST_CLASS_MINOR, LAST_CLASS_MINOR } from '../tc/handles.ts';
import { AdmissionError, AdmissionFullError } from './errors.ts';

function sameAttachment(a: AttachmentRef, b: AttachmentRef): boolean {
  return a.containerId === b.containerId && a.ifname === b.ifname;
}

function guaranteed(policy: PolicyJson, direction: 'egress' | 'ingress'): number {
  return policy[direction]?.rate ?? 0;
}

/**
 * Writes `record` if its uplink has room for it (or it names none); throws AdmissionError otherwise.
 * A class on the uplink's tree not numbered yet (minor 0, never a class's) gets the lowest minor no
 * other attachment of the uplink has, under the same lock. Resolves to the record written.
 */
export async function admitAndRecord(registry: Registry, record: AttachmentRecord, runner: ToolRunner): Promise<AttachmentRecord> {
  const uplink = record.uplink;
  if (!uplink) {
    registry.write(record);
    return record;
  }
  return withLock(
    uplinkLockPath(registry.stateDir, uplink.name),
    async () => {
      checkAdmission(registry, record);
      const numbered = record.uplinkClass?.minor === 0 ? { ...record, uplinkClass: { ...record.uplinkClass, minor: freeMinor(registry, record) } } : record;
      registry.write(numbered);
      return numbered;
    },
    { runner },
  );
}

function freeMinor(registry: Registry, record: AttachmentRecord): number {
  const taken = new Set(
    registry
      .list()
      .records.filter((other) => other.uplink?.name === record.uplink?.name && !sameAttachment(other, record))
      .flatMap((other) => (other.uplinkClass ? [other.uplinkClass.minor] : [])),
  );
  for (let minor = FIRST_CLASS_MINOR; minor <= LAST_CLASS_MINOR; minor++) if (!taken.has(minor)) return minor;
  throw new AdmissionFullError(record.uplink!.name);
}

/**
 * Throws AdmissionError unless `record`'s uplink has room for its guaranteed rates beside every
 * other attachment's. Exact only under the uplink's lock (admitAndRecord); a dry run asks without it.
 */
export function checkAdmission(registry: Registry, record: AttachmentRecord): void {
  const uplink = record.uplink;
  if (!uplink) return;
  // A record whose netns is gone holds no share: its pod is gone, only its DEL is late.
  const others = registry
    .list()
    .records.filter((other) => other.uplink?.name === uplink.name && !sameAttachment(other, record) && pathExists(other.netns));
  for (const direction of DIRECTIONS) {
    const asked = guaranteed(record.policy, direction);
    if (asked === 0) continue;
    const taken = others.reduce((sum, other) => sum + guaranteed(other.policy, direction), 0);
    if (taken + asked > guaranteeable(uplink)) throw new AdmissionError(uplink, direction, taken, asked);
  }
}

/** The guaranteed totals per uplink and direction, for `tcqos list`. */
export interface UplinkUsage {
  readonly name: string;
  readonly capacity: number;
  /** Kept for traffic that is no attachment's (0 for records from before reserves). */
  readonly reserve: number;
  /** Whether the uplink's own tree keeps the guarantees (uplink.enforce). */
  readonly enforced: boolean;
  readonly egress: number;
  readonly ingress: number;
  readonly attachments: number;
}

export function uplinkUsage(records: readonly AttachmentRecord[]): UplinkUsage[] {
  const usage = new Map<string, { -readonly [K in keyof UplinkUsage]: UplinkUsage[K] }>();
  for (const record of records) {
    if (!record.uplink) continue;
    const { name, capacity, reserve = 0, enforce = false } = record.uplink;
    const entry = usage.get(name) ?? { name, capacity, reserve, enforced: enforce, egress: 0, ingress: 0, attachments: 0 };
    entry.egress += guaranteed(record.policy, 'egress');
    entry.ingress += guaranteed(record.policy, 'ingress');
    entry.attachments += 1;
    usage.set(entry.name, entry);
  }
  return [...usage.values()];
}
