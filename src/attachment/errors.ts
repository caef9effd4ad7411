/**
 * What can go wrong on one attachment, in the use cases' own terms: adapters (CNI, CLI, agent) turn
 * these into their error codes and lines. Every message is one line a user can act on.
 */
import type { Direction } from '../config/policy.ts';
import { formatRate } from '../config/units.ts';
import type { ToolRun } from '../netns/session.ts';
import type { AttachmentRef } from '../state/record.ts';
import { failedBatchLine, isAlreadyInstalled, missingKernelFeature } from '../tc/messages.ts';

export class AttachmentNotFoundError extends Error {
  constructor(ref: AttachmentRef, stateDir: string) {
    super(`no attachment ${ref.containerId}/${ref.ifname} is registered in ${stateDir} (see "tcqos list")`);
  }
}

/** A record that is there but cannot be read: the attachment must be added again (or DEL'd). */
export class UnreadableRecordError extends Error {}

export class InterfaceMissingError extends Error {
  constructor(ifname: string, netns: string) {
    super(`interface ${ifname} not found in ${netns}`);
  }
}

/** A qdisc tcqos did not install sits where tcqos would shape: it is never removed. */
export class ForeignQdiscError extends Error {
  constructor(ifname: string, kind: string, where: 'root' | 'ingress', handle: string) {
    super(`${ifname} already has a ${kind} ${where} qdisc (handle ${handle}) that tcqos did not install: remove it or do not chain two shapers`);
  }
}

/** Someone else changed the interface while tcqos worked on it: trying again will do. */
export class ConcurrentChangeError extends Error {
  constructor(ifname: string) {
    super(`${ifname} changed while tcqos was shaping it`);
  }
}

/** The kernel does not hold what the policy asks for. */
export class DriftError extends Error {
  readonly differences: readonly string[];
  constructor(ifname: string, differences: readonly string[]) {
    super(`tcqos shaping on ${ifname} differs from its configuration: ${differences[0]}${differences.length > 1 ? ` (and ${differences.length - 1} more)` : ''}`);
    this.differences = differences;
  }
}

/** Guaranteed rates on an uplink would add up to more than it carries. */
export class AdmissionError extends Error {
  constructor(uplink: { readonly name: string; readonly capacity: number; readonly reserve?: number }, direction: Direction, guaranteed: number, asked: number) {
    const reserve = uplink.reserve ?? 0;
    super(
      `uplink ${uplink.name} (capacity ${formatRate(uplink.capacity)}${reserve ? `, reserve ${formatRate(reserve)}` : ''}) cannot guarantee ${formatRate(asked)} of ${direction}: ` +
        `${formatRate(guaranteed)} is already guaranteed to other attachments, ${formatRate(Math.max(0, uplink.capacity - reserve - guaranteed))} is left`,
    );
  }
}

/** Every class number of an uplink's tree is taken (thousands of attachments on one uplink). */
export class AdmissionFullError extends Error {
  constructor(uplink: string) {
    super(`uplink ${uplink} has no class left for another attachment`);
  }
}

/** The uplink is not where the attachment's traffic goes, or not there at all. */
export class UplinkMismatchError extends Error {}

/** ip or tc refused part of the work: what was being done, the line, tc's words, and what they mean. */
export class ApplyError extends Error {
  readonly run: ToolRun;
  readonly failedLine: string | undefined;
  readonly missingFeature: string | undefined;
  readonly alreadyInstalled: boolean;
  constructor(doing: string, run: ToolRun, script?: string) {
    const stderr = run.stderr.trim();
    const missingFeature = missingKernelFeature(stderr);
    super(missingFeature ? `${doing}: this kernel lacks ${missingFeature}` : `${doing}: ${stderr.split('\n')[0] || `${run.command} failed`}`);
    this.run = run;
    this.failedLine = failedBatchLine(stderr, script);
    this.missingFeature = missingFeature;
    this.alreadyInstalled = isAlreadyInstalled(stderr);
  }

  get details(): string {
    return [this.failedLine ? `failed line: ${this.failedLine}` : '', `${this.run.command}: ${this.run.stderr.trim()}`].filter(Boolean).join('\n');
  }
}
