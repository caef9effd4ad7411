/**
 * Which of what a netns holds is tcqos's: the rules ADD, DEL, CHECK and update share, in one place.
 * tcqos only ever removes what these rules call its own.
 */
import { ifbName, QDISC_HANDLE, REDIRECT_PREF } from './handles.ts';
import type { FilterInfo, LinkInfo, QdiscInfo } from './types.ts';

export function isOurs(qdisc: QdiscInfo | undefined): boolean {
  return qdisc?.kind === 'htb' && qdisc.handle === QDISC_HANDLE;
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

/**
 * Every device's qdiscs (so which devices exist) and the interface's ingress filters -> the state.
 * The hook feeding the ifb is an `ingress` qdisc on an attachment's interface; on the uplink it is a
 * `clsact`, which is tcqos's when it carries tcqos's redirect, or carries nothing while the uplink's
 * own record says tcqos installed it (`adoptEmptyClsact`: an interrupted install).
 */
export function attachmentState(
  ifname: string,
  qdiscs: readonly QdiscInfo[],
  ingressFilters: readonly FilterInfo[],
  hook: 'ingress' | 'clsact' = 'ingress',
  adoptEmptyClsact = false,
): AttachmentState {
  const ifb = ifbName(ifname);
  const ingress = qdiscs.find((q) => q.dev === ifname && q.ingress);
  const carriesOurRedirect = ingressFilters.some((f) => f.pref === REDIRECT_PREF && f.redirectTo !== undefined);
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
      ingress?.kind === hook && (carriesOurRedirect || (ingressFilters.length === 0 && (hook === 'ingress' || adoptEmptyClsact))),
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

/** Root qdiscs a fresh interface has: nothing was installed on it yet. */
const UNTOUCHED_ROOT_KINDS = new Set(['noqueue', 'noop']);

/**
 * Whether an interface (and its ifb, when ingress is wanted) is as the kernel made it, read from a
 * link listing alone: anything else (an earlier ADD, an interrupted one, someone else's qdisc) needs
 * the slow path that reads tc state before installing.
 */
export function isUntouched(iface: LinkInfo, ifbLink: LinkInfo | undefined, wantsIngress: boolean): boolean {
  if (!UNTOUCHED_ROOT_KINDS.has(iface.rootQdiscKind)) return false;
  if (ifbLink?.rootQdiscKind === 'htb') return false;
  return wantsIngress || ifbLink?.kind !== 'ifb';
}
