/**
 * The pieces every command shares: entering the pod netns safely, finding what tcqos already
 * installed there, and removing it (never anything tcqos did not install).
 */
import { CniError, ErrorCode } from '../cni/errors.ts';
import { mustRunInNetns, startInNetns, ToolError } from '../netns/exec.ts';
import { netnsState } from '../netns/netns-path.ts';
import { readQdiscsAndIngress, type FilterInfo, type QdiscInfo } from '../netns/observe.ts';
import { script, teardownLines } from '../plan/batch.ts';
import { isOurs } from '../plan/drift.ts';
import { ifbName, REDIRECT_PREF } from '../plan/tree.ts';

/** Throws the CNI error for a netns ADD or CHECK cannot use. */
export function requireUsableNetns(netns: string): void {
  const state = netnsState(netns);
  if (state === 'missing') throw new CniError(ErrorCode.invalidEnvironment, `CNI_NETNS ${netns} does not exist`);
  if (state === 'not-a-netns') throw new CniError(ErrorCode.invalidEnvironment, `CNI_NETNS ${netns} is not a network namespace`);
  if (state === 'own') {
    throw new CniError(ErrorCode.invalidEnvironment, `CNI_NETNS ${netns} is the plugin's own network namespace: refusing to shape the host`);
  }
}

/** What is on the attachment's devices now, and which of it is tcqos's. */
export interface AttachmentState {
  readonly ifname: string;
  readonly ifb: string;
  readonly ifaceExists: boolean;
  readonly ifbExists: boolean;
  readonly root: QdiscInfo | undefined;
  readonly ingress: QdiscInfo | undefined;
  readonly ifbRoot: QdiscInfo | undefined;
  /** Every qdisc in the netns (leaf queues included). */
  readonly qdiscs: readonly QdiscInfo[];
  readonly ingressFilters: readonly FilterInfo[];
  /**
   * The ingress qdisc carries tcqos's redirect filter (marked by its preference), or no filter at
   * all: an empty ingress qdisc does nothing, and is what tcqos's becomes when its filter is deleted.
   */
  readonly ingressIsOurs: boolean;
}

/** One tc process: every device's qdiscs (so which devices exist) and the pod interface's ingress filters. */
export function readAttachmentState(netns: string, ifname: string): AttachmentState {
  const { qdiscs, ingressFilters } = readQdiscsAndIngress(netns, ifname);
  const ifb = ifbName(ifname);
  const ingress = qdiscs.find((q) => q.dev === ifname && q.ingress);
  return {
    ifname,
    ifb,
    ifaceExists: qdiscs.some((q) => q.dev === ifname),
    ifbExists: qdiscs.some((q) => q.dev === ifb),
    root: qdiscs.find((q) => q.dev === ifname && q.root),
    ingress,
    ifbRoot: qdiscs.find((q) => q.dev === ifb && q.root),
    qdiscs,
    ingressFilters,
    ingressIsOurs:
      ingress?.kind === 'ingress' &&
      (ingressFilters.length === 0 || ingressFilters.some((f) => f.pref === REDIRECT_PREF && f.redirectTo !== undefined)),
  };
}

/** A root qdisc someone added (kernel defaults have handle 0:) that is not tcqos's. */
export function foreignRoot(state: AttachmentState): QdiscInfo | undefined {
  const root = state.root;
  return root && root.handle !== '0:' && !isOurs(root) ? root : undefined;
}

/** An ingress qdisc that does not carry tcqos's redirect. */
export function foreignIngress(state: AttachmentState): QdiscInfo | undefined {
  return state.ingressIsOurs ? undefined : state.ingress;
}

export function hasAnythingOfOurs(state: AttachmentState): boolean {
  return state.ifbExists || state.ingressIsOurs || isOurs(state.root);
}

/** Removes everything tcqos installed for the attachment; leaves other qdiscs alone. */
export async function removeAttachment(netns: string, state: AttachmentState): Promise<void> {
  if (state.ifbExists) await removeIfbWhile(netns, state.ifb, () => removeQdiscs(netns, state));
  else removeQdiscs(netns, state);
}

/**
 * Deletes the attachment's ifb (its qdiscs go with it) while `meanwhile` runs: the kernel spends
 * ~15 ms of RCU grace periods on a link deletion, which the other runs overlap. True when the ifb
 * was there.
 */
export async function removeIfbWhile(netns: string, ifb: string, meanwhile: () => void): Promise<boolean> {
  const deletion = startInNetns(netns, 'ip', ['link', 'del', 'dev', ifb]);
  try {
    meanwhile();
  } catch (error) {
    await deletion.catch(() => undefined);
    throw error;
  }
  const run = await deletion;
  if (run.exitCode === 0) return true;
  if (/Cannot find device/.test(run.stderr)) return false;
  throw new ToolError(run);
}

/** tcqos's root qdisc and ingress qdisc on the pod interface. */
export function removeQdiscs(netns: string, state: AttachmentState): void {
  const lines = state.ifaceExists ? teardownLines(state.ifname, { rootQdisc: isOurs(state.root), ingressQdisc: state.ingressIsOurs }) : [];
  if (lines.length) mustRunInNetns(netns, 'tc', ['-batch', '-'], script(lines));
}
