/**
 * Reading what is installed at a site: its links (ip -j) and its tc state (one tc batch of `show`
 * commands, src/netns/show.ts). Knows which objects to read, nothing about policies.
 */
import { script, showLinkLines } from '../plan/batch.ts';
import { ifbName } from '../tc/handles.ts';
import { attachmentState, isOurs, type AttachmentState } from '../tc/ownership.ts';
import type { FilterInfo, LinkInfo, ObservedAttachment, ObservedTree, QdiscInfo } from '../tc/types.ts';
import { parseJsonSequence } from '../text/json.ts';
import { linksFromJson } from './parse.ts';
import type { NetnsSession } from './session.ts';
import { classesOf, filtersOf, qdiscsOf, showAll, type ShowCommand } from './show.ts';

/** The links named (those that exist): from one process, or in the node's shared batches. */
export async function readLinks(session: NetnsSession, devices: readonly string[]): Promise<LinkInfo[]> {
  return session.nodeBatches ? session.nodeBatches.links(devices) : readLinksNow(session, devices);
}

/** The links named, from one process of its own. */
export async function readLinksNow(session: NetnsSession, devices: readonly string[]): Promise<LinkInfo[]> {
  const run = await session.run('ip', ['-j', '-d', '-force', '-batch', '-'], script(showLinkLines(devices)));
  return parseJsonSequence(run.stdout).flatMap(linksFromJson);
}

/** The hook feeding a site's ifb: an `ingress` qdisc, or (on an uplink) a clsact. */
export interface HookOptions {
  readonly hook?: 'ingress' | 'clsact';
  /** An empty clsact is tcqos's (its uplink record says tcqos installed there). */
  readonly adoptEmptyClsact?: boolean;
}

/**
 * One tc process: the interface's and its ifb's qdiscs (so whether they exist) and the interface's
 * ingress filters: enough to tell what is tcqos's there, to remove it or to install afresh.
 */
export async function readAttachmentState(session: NetnsSession, ifname: string, options: HookOptions = {}): Promise<AttachmentState> {
  const ifb = ifbName(ifname);
  const shown = await showAll(session, [
    { show: 'qdisc', dev: ifname },
    { show: 'qdisc', dev: ifb },
    { show: 'filter', dev: ifname, hook: 'ingress' },
  ]);
  return attachmentState(ifname, [...qdiscsOf(shown[0]), ...qdiscsOf(shown[1])], filtersOf(shown[2]), options.hook, options.adoptEmptyClsact);
}

/** A site as read back: what is tcqos's there, the whole of it, and the filters of a clsact's egress. */
export interface SiteReading {
  readonly state: AttachmentState;
  readonly observed: ObservedAttachment;
  /** The egress hook's filters (a clsact's: the uplink's classifier); empty with an `ingress` qdisc. */
  readonly egressHook: readonly FilterInfo[];
}

/**
 * The whole site in two processes: one tc batch (qdiscs with their counters, classes and filters of
 * the interface and its ifb, the hooks' filters) and one ip listing (the MTU, whether the ifb is up).
 */
export async function readSite(session: NetnsSession, ifname: string, options: HookOptions = {}): Promise<SiteReading> {
  const ifb = ifbName(ifname);
  const commands: ShowCommand[] = [
    { show: 'qdisc', dev: ifname },
    { show: 'qdisc', dev: ifb },
    { show: 'filter', dev: ifname, hook: 'ingress' },
    { show: 'class', dev: ifname },
    { show: 'filter', dev: ifname },
    { show: 'class', dev: ifb },
    { show: 'filter', dev: ifb },
    ...(options.hook === 'clsact' ? [{ show: 'filter', dev: ifname, hook: 'egress' } as const] : []),
  ];
  const [shown, links] = await Promise.all([showAll(session, commands), readLinks(session, [ifname, ifb])]);
  const state = attachmentState(ifname, [...qdiscsOf(shown[0]), ...qdiscsOf(shown[1])], filtersOf(shown[2]), options.hook, options.adoptEmptyClsact);
  const tree = (dev: string, root: QdiscInfo | undefined, at: number): ObservedTree => {
    const leaves = state.qdiscs.filter((q) => q.dev === dev && q.parent !== undefined);
    if (!root || !isOurs(root)) return { qdisc: root, leaves, classes: [], filters: [] };
    return { qdisc: root, leaves, classes: classesOf(shown[at]), filters: filtersOf(shown[at + 1]) };
  };
  return {
    state,
    observed: {
      iface: links.find((link) => link.name === ifname),
      ifb: links.find((link) => link.name === ifb && link.kind === 'ifb'),
      onInterface: tree(ifname, state.root, 3),
      ingressQdisc: state.ingress,
      redirects: state.ingressFilters,
      onIfb: tree(ifb, state.ifbRoot, 5),
    },
    egressHook: filtersOf(shown[7]),
  };
}
