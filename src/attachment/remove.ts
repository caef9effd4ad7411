/** Removing what tcqos installed on an attachment, and never anything it did not install. */
import { readAttachmentState } from '../netns/observe.ts';
import { ToolError, type NetnsSession } from '../netns/session.ts';
import { script, teardownLines } from '../plan/batch.ts';
import { ifbName } from '../tc/handles.ts';
import { isOurs, type AttachmentState } from '../tc/ownership.ts';

/**
 * Removes the attachment's shaping. The ifb is tcqos's by its name, and deleting a link is the slow
 * part (~20 ms of RCU grace periods): it is started first, and the qdiscs are read and removed while
 * the kernel works on it. True when there was an ifb.
 */
export async function removeShaping(session: NetnsSession, ifname: string): Promise<boolean> {
  return removeIfbWhile(session, ifbName(ifname), async () => removeQdiscs(session, await readAttachmentState(session, ifname)));
}

/** Removes everything of tcqos's that `state` shows. */
export async function removeState(session: NetnsSession, state: AttachmentState): Promise<void> {
  if (state.ifbExists) await removeIfbWhile(session, state.ifb, () => removeQdiscs(session, state));
  else await removeQdiscs(session, state);
}

/**
 * Deletes the ifb (its qdiscs go with it) while `meanwhile` runs; true when the ifb was there. The
 * kernel takes the device out of the namespace at once (its name free, nothing left to reach it),
 * then spends ~15-20 ms of RCU grace periods freeing it inside the `ip` process: tcqos waits for the
 * first, not for the second (DEL ~12 ms faster, measured).
 */
async function removeIfbWhile(session: NetnsSession, ifb: string, meanwhile: () => Promise<void>): Promise<boolean> {
  const deletion = session.start('ip', ['link', 'del', 'dev', ifb]);
  try {
    await meanwhile();
  } catch (error) {
    await deletion.done.catch(() => undefined);
    throw error;
  }
  if (await session.whenDeviceGone(deletion, ifb)) return true;
  const run = await deletion.done;
  if (run.exitCode === 0) return true;
  if (/Cannot find device/.test(run.stderr)) return false;
  throw new ToolError(run);
}

/** tcqos's root qdisc and ingress qdisc on the pod interface. */
async function removeQdiscs(session: NetnsSession, state: AttachmentState): Promise<void> {
  const lines = state.ifaceExists ? teardownLines(state.ifname, { rootQdisc: isOurs(state.root), ingressQdisc: state.ingressIsOurs ? (state.ingress!.kind as 'ingress' | 'clsact') : undefined }) : [];
  if (lines.length) await session.mustRun('tc', ['-batch', '-'], script(lines));
}
