/**
 * The pieces every command shares: entering the pod netns safely, finding what tcqos already
 * installed there, and removing it.
 */
import { CniError, ErrorCode } from '../cni/errors.ts';
import { mustRunInNetns } from '../netns/exec.ts';
import { netnsState } from '../netns/netns-path.ts';
import { readFilters, readLinks, readQdiscs, type LinkInfo, type QdiscInfo } from '../netns/observe.ts';
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
  readonly iface: LinkInfo | undefined;
  readonly ifb: LinkInfo | undefined;
  readonly root: QdiscInfo | undefined;
  readonly ingress: QdiscInfo | undefined;
  readonly ifbRoot: QdiscInfo | undefined;
  /** The ingress qdisc is tcqos's (it carries tcqos's redirect filter, or tcqos's ifb is there). */
  readonly ingressIsOurs: boolean;
}

export async function readAttachmentState(netns: string, ifname: string): Promise<AttachmentState> {
  const [links, qdiscs] = await Promise.all([readLinks(netns), readQdiscs(netns)]);
  const ifb = ifbName(ifname);
  const ifbLink = links.find((link) => link.name === ifb && link.kind === 'ifb');
  const ingress = qdiscs.find((q) => q.dev === ifname && q.ingress);
  return {
    iface: links.find((link) => link.name === ifname),
    ifb: ifbLink,
    root: qdiscs.find((q) => q.dev === ifname && q.root),
    ingress,
    ifbRoot: qdiscs.find((q) => q.dev === ifb && q.root),
    // With the ifb gone (deleted by hand, or an interrupted run) only the filter tells.
    ingressIsOurs: ingress !== undefined && (ifbLink !== undefined || (await carriesOurRedirect(netns, ifname))),
  };
}

async function carriesOurRedirect(netns: string, ifname: string): Promise<boolean> {
  const filters = await readFilters(netns, ifname, 'ingress');
  return filters.some((filter) => filter.pref === REDIRECT_PREF && filter.redirectTo !== undefined);
}

/** A root qdisc someone added (kernel defaults have handle 0:) that is not tcqos's. */
export function foreignRoot(state: AttachmentState): QdiscInfo | undefined {
  const root = state.root;
  return root && root.handle !== '0:' && !isOurs(root) ? root : undefined;
}

/** Removes everything tcqos installed for the attachment; leaves other qdiscs alone. */
export async function removeAttachment(netns: string, ifname: string, state: AttachmentState): Promise<void> {
  const lines = state.iface ? teardownLines(ifname, { rootQdisc: isOurs(state.root), ingressQdisc: state.ingressIsOurs }) : [];
  if (lines.length) await mustRunInNetns(netns, 'tc', ['-batch', '-'], script(lines));
  if (state.ifb) await mustRunInNetns(netns, 'ip', ['link', 'del', 'dev', state.ifb.name]);
}
