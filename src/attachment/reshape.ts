/**
 * Changing a live attachment's shaping in place: the typed diff between the kernel and the new plan
 * becomes one tc batch (plus creating or deleting the ifb when ingress is turned on or off). Flows
 * keep running: no qdisc is re-created, classes keep their queues and counters.
 */
import type { Logger } from '../log.ts';
import type { NetnsSession } from '../netns/session.ts';
import { createIfbLines, script } from '../plan/batch.ts';
import { ifbTree, type AttachmentPlan } from '../plan/tree.ts';
import { updateLines } from '../plan/update.ts';
import { foreignIngress } from '../tc/ownership.ts';
import { ApplyError, ForeignQdiscError } from './errors.ts';
import { inspectAttachment } from './inspect.ts';
import type { AttachmentChange } from '../plan/diff.ts';
import { siteCounters, type DeviceCounters } from '../netns/counters.ts';
import type { ShapeTarget } from './shape.ts';

export interface Reshaped {
  readonly plan: AttachmentPlan;
  /** The tc lines run (empty when the kernel already matched). */
  readonly lines: readonly string[];
  /** The site's counters as read before the change (what carries them across it starts from). */
  readonly before: ReadonlyMap<string, DeviceCounters>;
}

/** What a change would run, worked out from the kernel as read: nothing runs yet. */
export interface PlannedReshape extends Reshaped {
  readonly changes: readonly AttachmentChange[];
}

/** Reads the site and works out the lines that take it to the target's policy. */
export async function planReshape(session: NetnsSession, target: ShapeTarget): Promise<PlannedReshape> {
  const { ifname } = target;
  const { plan, changes, state, observed } = await inspectAttachment(session, target);
  for (const change of changes) {
    if (change.kind === 'tree' && change.change.kind === 'tree-foreign') {
      const qdisc = change.change.qdisc;
      throw new ForeignQdiscError(change.dev, qdisc.kind, 'root', qdisc.handle);
    }
  }
  const ingress = foreignIngress(state);
  if (ifbTree(plan) && ingress && changes.some((change) => change.kind === 'ingress-qdisc-missing' || change.kind === 'ifb-missing')) {
    throw new ForeignQdiscError(ifname, ingress.kind, 'ingress', ingress.handle);
  }
  return { plan, changes, lines: updateLines(plan, changes), before: siteCounters(state, observed) };
}

/** Runs a planned change (`planned` read from this site by `planReshape`). */
export async function applyReshape(session: NetnsSession, planned: PlannedReshape, log: Logger): Promise<Reshaped> {
  const { plan, changes, lines } = planned;
  if (ifbTree(plan) && changes.some((change) => change.kind === 'ifb-missing')) {
    const created = await session.run('ip', ['-batch', '-'], script(createIfbLines(plan.ifb)));
    if (created.exitCode !== 0) throw new ApplyError('creating the ifb for ingress shaping', created);
  }
  if (lines.length) {
    const batch = session.faults.intoBatch([...lines]);
    const tcScript = script(batch);
    const ran = session.nodeBatches ? await session.nodeBatches.change(batch) : await session.run('tc', ['-batch', '-'], tcScript);
    if (ran.exitCode !== 0) throw new ApplyError(`changing the shaping of ${plan.ifname}`, ran, tcScript);
  }
  if (!ifbTree(plan) && changes.some((change) => change.kind === 'ifb-unwanted')) {
    await session.mustRun('ip', ['link', 'del', 'dev', plan.ifb]);
  }
  if (lines.length) log.info({ lines: lines.length }, 'shaping changed in place');
  return { plan, lines, before: planned.before };
}

/** Reads the site and takes it to the target's policy. */
export async function reshapeAttachment(session: NetnsSession, target: ShapeTarget, log: Logger): Promise<Reshaped> {
  return applyReshape(session, await planReshape(session, target), log);
}
