/**
 * Where an attachment is shaped. A veth pod is shaped on the host end of its veth, in the node's
 * namespace, where nothing the pod does can reach the shaping: not deleting qdiscs (NET_ADMIN), not
 * skipping the pod interface's qdisc (NET_RAW with PACKET_QDISC_BYPASS), not an SO_PRIORITY aimed at
 * a queue. Any other pod (macvlan, ipvlan) is shaped on its own interface inside its netns.
 */
import { readLinks } from '../netns/observe.ts';
import { NetnsSession, withSession, type SessionOptions } from '../netns/session.ts';
import type { Site } from '../plan/tree.ts';
import { ifbName } from '../tc/handles.ts';
import type { AttachmentRecord, HostEnd } from '../state/record.ts';

/** One site of an attachment, ready to work on: its session, its interface, which site it is. */
export interface SiteTarget {
  readonly session: NetnsSession;
  readonly ifname: string;
  readonly site: Site;
}

/**
 * Of the interfaces the chain's result lists outside the pod (ptp's host veth; bridge's bridge and
 * host veth), the one that is a veth in the node's namespace; undefined for a macvlan pod. With
 * `orLeftIfb` (a DEL without a record, after the pod's netns and so its veth are gone), else the
 * one whose ifb is still there.
 */
export async function findHostEnd(node: NetnsSession, candidates: readonly string[], orLeftIfb = false): Promise<string | undefined> {
  if (!candidates.length) return undefined;
  const links = await readLinks(node, orLeftIfb ? [...candidates, ...candidates.map(ifbName)] : candidates);
  const veth = links.find((link) => link.kind === 'veth' && candidates.includes(link.name))?.name;
  return veth ?? (orLeftIfb ? candidates.find((name) => links.some((link) => link.name === ifbName(name) && link.kind === 'ifb')) : undefined);
}

/** Runs `work` on the attachment's site: the pod session it was given, or the node's for a host end. */
export async function withSite<T>(
  record: Pick<AttachmentRecord, 'ifname' | 'host'>,
  pod: NetnsSession,
  tools: SessionOptions,
  work: (target: SiteTarget) => Promise<T>,
): Promise<T> {
  if (!record.host) return work({ session: pod, ifname: record.ifname, site: 'pod' });
  return withHostEnd(record.host, tools, work);
}

/** Runs `work` on a host end, in the node namespace it was installed in. */
export function withHostEnd<T>(host: HostEnd, tools: SessionOptions, work: (target: SiteTarget) => Promise<T>): Promise<T> {
  return withSession(NetnsSession.node(tools, host.netns), (session) => work({ session, ifname: host.interface, site: 'host' }));
}
