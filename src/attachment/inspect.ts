/** Reading an attachment back and comparing it with a policy: what CHECK and update start from. */
import type { Policy } from '../config/policy.ts';
import { formatRate } from '../config/units.ts';
import { readSite } from '../netns/observe.ts';
import type { NetnsSession } from '../netns/session.ts';
import type { ShapeTarget } from './shape.ts';
import { describeChange, diffAttachment, type AttachmentChange } from '../plan/diff.ts';
import { planAttachment, type AttachmentPlan } from '../plan/tree.ts';
import type { AttachmentState } from '../tc/ownership.ts';
import type { ObservedAttachment } from '../tc/types.ts';
import { DriftError, InterfaceMissingError } from './errors.ts';

export interface Inspection {
  readonly state: AttachmentState;
  readonly observed: ObservedAttachment;
  readonly plan: AttachmentPlan;
  readonly changes: readonly AttachmentChange[];
}

/** Reads the site and plans the target's policy for it (class ids kept), listing the differences. */
export async function inspectAttachment(session: NetnsSession, target: ShapeTarget): Promise<Inspection> {
  const { ifname } = target;
  const { state, observed } = await readSite(session, ifname);
  if (!observed.iface) throw new InterfaceMissingError(ifname, session.path);
  const plan = planAttachment(target.policy, ifname, observed.iface.mtu, target.classIds, target.site);
  return { state, observed, plan, changes: diffAttachment(plan, observed) };
}

/** CHECK: throws a DriftError naming every difference between the kernel and the target's policy. */
export async function verifyAttachment(session: NetnsSession, target: ShapeTarget): Promise<void> {
  const { plan, changes } = await inspectAttachment(session, target);
  if (changes.length) throw new DriftError(target.ifname, changes.map((change) => describeChange(change, plan)));
}

/** Where a policy goes above its caps (a record edited by hand, or written by a broken tool). */
export function exceedsCaps(policy: Policy, caps: Policy): string[] {
  const beyond: string[] = [];
  for (const direction of ['egress', 'ingress'] as const) {
    const cap = caps[direction];
    const inForce = policy[direction];
    if (!cap || !inForce) continue;
    if (inForce.rate > cap.rate) beyond.push(`${direction} rate ${formatRate(inForce.rate)} is above the cap ${formatRate(cap.rate)}`);
    if (inForce.ceil > cap.ceil) beyond.push(`${direction} ceil ${formatRate(inForce.ceil)} is above the cap ${formatRate(cap.ceil)}`);
  }
  return beyond;
}
