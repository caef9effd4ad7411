/**
 * Shaping a new attachment in one go, or not at all.
 *
 * A fresh interface costs two processes: one `ip -batch` that creates the ifb and lists the links
 * (MTU, root qdisc), and one `tc -batch` that installs both directions. Anything already on the
 * interface (an earlier ADD, an interrupted one, someone else's qdisc) sends it down a slower path
 * that reads the tc state, refuses foreign qdiscs, removes tcqos's own and applies once more.
 */
import type { Policy } from '../config/policy.ts';
import type { Logger } from '../log.ts';
import { parseJsonSequence } from '../text/json.ts';
import { readAttachmentState } from '../netns/observe.ts';
import { linksFromJson } from '../netns/parse.ts';
import type { NetnsSession } from '../netns/session.ts';
import type { AttachmentClassIds } from '../plan/class-ids.ts';
import { prepareLines, script, setupLines } from '../plan/batch.ts';
import { directionAtRoot, planAttachment, type AttachmentPlan, type Site } from '../plan/tree.ts';
import { otherDirection } from '../config/policy.ts';
import { ifbName } from '../tc/handles.ts';
import { foreignIngress, foreignRoot, hasAnythingOfOurs, isUntouched } from '../tc/ownership.ts';
import { ApplyError, ConcurrentChangeError, ForeignQdiscError, InterfaceMissingError } from './errors.ts';
import { removeState } from './remove.ts';

export interface ShapeTarget {
  /** The interface the site shapes (the pod's, or the host end of its veth). */
  readonly ifname: string;
  readonly site: Site;
  readonly policy: Policy;
  readonly classIds: AttachmentClassIds;
}

/** Installs `target.policy`; resolves to the plan installed. */
export async function shapeAttachment(session: NetnsSession, target: ShapeTarget, log: Logger): Promise<AttachmentPlan> {
  const first = await applyFresh(session, target, log, true);
  if (first !== 'occupied') return first;
  // Something is there already: tcqos's own state converges, anyone else's is left alone.
  const state = await readAttachmentState(session, target.ifname);
  const atRoot = directionAtRoot(target.site);
  const foreign = (target.policy[atRoot] && foreignRoot(state)) || (target.policy[otherDirection(atRoot)] && foreignIngress(state));
  await removeState(session, state);
  if (foreign) throw new ForeignQdiscError(target.ifname, foreign.kind, foreign.root ? 'root' : 'ingress', foreign.handle);
  const second = await applyFresh(session, target, log, false);
  if (second === 'occupied') throw new ConcurrentChangeError(target.ifname);
  return second;
}

/**
 * Installs the plan; 'occupied' when something is already there (with `firstTry`, any root qdisc
 * but the kernel's default counts; after a cleanup only a clash in tc itself does).
 */
async function applyFresh(session: NetnsSession, target: ShapeTarget, log: Logger, firstTry: boolean): Promise<AttachmentPlan | 'occupied'> {
  const { ifname, policy, site } = target;
  const ifb = ifbName(ifname);
  const wantsIfb = policy[otherDirection(directionAtRoot(site))] !== undefined;
  const prepared = await session.run('ip', ['-j', '-d', '-force', '-batch', '-'], script(prepareLines(ifname, ifb, wantsIfb)));
  const links = parseJsonSequence(prepared.stdout).flatMap(linksFromJson);
  session.faults.killAt('after-read');
  const iface = links.find((link) => link.name === ifname);
  const ifbLink = links.find((link) => link.name === ifb);
  if (wantsIfb && ifbLink?.kind !== 'ifb') {
    throw new ApplyError(ifbLink ? `a ${ifbLink.kind ?? 'non-ifb'} device is named ${ifb}` : `creating the ifb for ${otherDirection(directionAtRoot(site))} shaping`, prepared);
  }
  if (!iface) {
    await rollBack(session, ifname, log);
    throw new InterfaceMissingError(ifname, session.path);
  }
  session.faults.killAt('after-ifb');
  if (firstTry && !isUntouched(iface, ifbLink, wantsIfb)) return 'occupied';

  const plan = planAttachment(policy, ifname, iface.mtu, target.classIds, site);
  const tcScript = script(session.faults.intoBatch(setupLines(plan)));
  const installed = await session.run('tc', ['-batch', '-'], tcScript);
  if (installed.exitCode !== 0) {
    const failure = new ApplyError(`installing shaping on ${ifname}`, installed, tcScript);
    if (failure.alreadyInstalled) return 'occupied';
    await rollBack(session, ifname, log);
    throw failure;
  }
  session.faults.killAt('after-tc');
  return plan;
}

/** tc -batch is not atomic: remove whatever part of this ADD landed. */
async function rollBack(session: NetnsSession, ifname: string, log: Logger): Promise<void> {
  try {
    const state = await readAttachmentState(session, ifname);
    if (hasAnythingOfOurs(state)) await removeState(session, state);
  } catch (error) {
    log.error({ err: error }, 'rolling back a failed change failed too');
  }
}
