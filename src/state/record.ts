/** One attachment's record in the node's registry: what was asked, what is in force, and who set it. */
import type { BandwidthPolicyInput, PolicyJson, PolicySource } from '../config/policy.ts';
import type { NetnsIdentity } from '../netns/session.ts';
import type { CarriedCounters } from '../attachment/carry.ts';

export interface AttachmentRef {
  readonly containerId: string;
  readonly ifname: string;
}

export interface PodIdentity {
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string;
}

/** The uplink settings the attachment was admitted under (records from before reserves have only the first two). */
export interface UplinkShare {
  readonly name: string;
  /** bit/s */
  readonly capacity: number;
  readonly reserve?: number;
  readonly maxGuaranteePerAttachment?: number;
  readonly enforce?: boolean;
}

/**
 * An attachment's class on its uplink's own tree (`uplink.enforce`): the HTB minor (both directions),
 * and what its traffic is told apart by: its pod's cgroup when found (which the pod cannot forge),
 * else its interface's MAC.
 */
export interface UplinkClass {
  readonly minor: number;
  readonly mac: string;
  /** The pod's cgroup v2: its id (a decimal u64) and its depth below the hierarchy's root. */
  readonly cgroup?: { readonly id: string; readonly level: number };
}

/** The host end of a veth pod, in the node's namespace: where its shaping sits (hostSide). */
export interface HostEnd {
  /** The host end's interface name. */
  readonly interface: string;
  /** The node namespace it was installed in: only a tcqos running there may touch it again. */
  readonly netns: NetnsIdentity;
}

/** name -> HTB minor, per direction: kept for the attachment's life so an edit renumbers nothing. */
export interface ClassIds {
  readonly egress?: Readonly<Record<string, number>>;
  readonly ingress?: Readonly<Record<string, number>>;
}

export interface AttachmentRecord {
  readonly version: 1;
  readonly containerId: string;
  readonly ifname: string;
  readonly netns: string;
  /** The conflist's "name". */
  readonly network: string;
  readonly pod?: PodIdentity;
  /** The admin's static tcqos entry (the caps), as raw JSON; `tcqos update` replaces it. */
  readonly config: Record<string, unknown>;
  /** runtimeConfig.bandwidth as the runtime sent it (or as the agent rebuilt it from annotations). */
  readonly runtime?: Record<string, unknown>;
  /** The pod's shaping annotations (tcqos.io/policy*, kubernetes.io/*-bandwidth). */
  readonly annotations?: Readonly<Record<string, string>>;
  /**
   * The BandwidthPolicies in force where no annotation is, per direction: which policy
   * ("namespace/name") and its tree (source `policy`); set at ADD from the agent's entry and by the agent.
   */
  readonly bandwidthPolicy?: BandwidthPolicyInput;
  /** The policy in force. */
  readonly policy: PolicyJson;
  /** What set each direction's values. */
  readonly sources: { readonly egress?: PolicySource; readonly ingress?: PolicySource };
  readonly classIds: ClassIds;
  /** Present when the attachment is shaped on the host end of its veth instead of inside the pod. */
  readonly host?: HostEnd;
  readonly uplink?: UplinkShare;
  /** Its class on the uplink's own tree, when the uplink is enforced and the attachment is on it. */
  readonly uplinkClass?: UplinkClass;
  /**
   * The node namespace the ADD ran in, where the uplink's tree is: only a tcqos running there may
   * change that tree (an agent without host networking would find other links by those names).
   */
  readonly node?: NetnsIdentity;
  /** What queues and classes an update replaced had counted, added to the kernel's figures (stats). */
  readonly counters?: CarriedCounters;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** A record's problems, if any: a hand-edited, truncated or foreign file must not pass for a record. */
export function recordProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const record = value as Record<string, unknown>;
  if (record['version'] !== 1) return `unknown record version ${JSON.stringify(record['version'])}`;
  for (const key of ['containerId', 'ifname', 'netns', 'network', 'createdAt', 'updatedAt']) {
    if (typeof record[key] !== 'string') return `"${key}" is missing or not a string`;
  }
  for (const key of ['config', 'policy', 'sources', 'classIds']) {
    const member = record[key];
    if (typeof member !== 'object' || member === null || Array.isArray(member)) return `"${key}" is missing or not an object`;
  }
  return undefined;
}
