/**
 * The shared uplink's tree (`"uplink": {"enforce": true}`): what the attachments on one uplink (a
 * macvlan master) are guaranteed there, and what they may borrow. Pure: settings and members in,
 * a plan out.
 *
 * On the uplink's root (what the pods send) and on its ifb (what they receive, fed from the
 * uplink's ingress): HTB at the capacity; per attachment and direction a class with rate = its
 * guaranteed rate and ceil = its ceil (so its cap holds here too, against a pod that bypasses its
 * own interface's qdisc); one class, the reserve, for everything that is no attachment's (the
 * node's own traffic, pods without tcqos), guaranteed the reserve and free to borrow the rest.
 *
 * Classification, egress: the sending socket's cgroup, which a pod cannot forge, through the
 * classifier on the uplink's clsact egress (src/bpf), which writes the class into the packet's
 * priority, or a priority of 0 for anything else (so a pod's SO_PRIORITY never picks a class); an
 * attachment whose pod cgroup was not found is matched by its source MAC, which a pod with
 * CAP_NET_RAW can forge (docs/security.md). Ingress: by destination MAC (the remote end picks it).
 */
import type { CgroupRule } from '../bpf/classifier.ts';
import type { Direction } from '../config/policy.ts';
import { CATCH_ALL_PREF, HTB_MAJOR, ifbName, ROOT_CLASS_MINOR } from '../tc/handles.ts';
import { htbClass, leafQueue, type AttachmentPlan, type HtbClassSpec, type ShapingTree, type U32FilterSpec } from './tree.ts';
import { macKeys, MATCH_ALL } from './u32.ts';

/** The class for traffic that is no attachment's. */
export const RESERVE_MINOR = 2;
/** Each attachment's filters at a preference of its own, so changing one rewrites no other's. */
const FIRST_MEMBER_PREF = 0x1000;

export interface UplinkSettings {
  readonly name: string;
  /** bit/s */
  readonly capacity: number;
  /** bit/s guaranteed to traffic that is no attachment's. */
  readonly reserve: number;
}

/** One attachment's share of the uplink, per direction it shapes. */
export interface UplinkMember {
  /** Its class's minor on the uplink (both directions), kept in its record. */
  readonly minor: number;
  /** Its pod interface's MAC. */
  readonly mac: string;
  /** Its pod's cgroup, when found: egress is classified by it instead of by MAC. */
  readonly cgroup?: { readonly id: bigint; readonly level: number };
  readonly egress?: { readonly rate: number; readonly ceil: number };
  readonly ingress?: { readonly rate: number; readonly ceil: number };
}

export interface UplinkPlan extends AttachmentPlan {
  readonly site: 'uplink';
  /** The classifier's rules (cgroup -> class), in the order they were given. */
  readonly classifier: readonly CgroupRule[];
}

export function planUplink(settings: UplinkSettings, members: readonly UplinkMember[], mtu: number): UplinkPlan {
  const ifb = ifbName(settings.name);
  const tree = (direction: Direction, dev: string): ShapingTree => {
    const shaped = members.filter((member) => member[direction]);
    const classes: HtbClassSpec[] = [
      htbClass('total', ROOT_CLASS_MINOR, undefined, settings.capacity, settings.capacity, undefined, 0, mtu),
      htbClass('reserve', RESERVE_MINOR, ROOT_CLASS_MINOR, settings.reserve, settings.capacity, undefined, 0, mtu),
      ...shaped.map((member) => {
        const share = member[direction]!;
        return htbClass(member.mac, member.minor, ROOT_CLASS_MINOR, share.rate, Math.min(share.ceil, settings.capacity), undefined, 0, mtu);
      }),
    ];
    const filters: U32FilterSpec[] = shaped
      // egress of a member found by cgroup is classified by the classifier alone: a MAC filter would let
      // a pod that forges that MAC into its class
      .filter((member) => direction === 'ingress' || !member.cgroup)
      .map((member) => ({
        pref: FIRST_MEMBER_PREF + member.minor,
        protocol: 'all',
        flowidMinor: member.minor,
        keys: macKeys(member.mac, direction === 'egress' ? 'src' : 'dst'),
      }));
    filters.push({ pref: CATCH_ALL_PREF, protocol: 'all', flowidMinor: RESERVE_MINOR, keys: [MATCH_ALL] });
    return { direction, dev, defaultMinor: RESERVE_MINOR, classes, leaves: classes.slice(1).map((spec) => leafQueue(spec, mtu)), filters };
  };
  return {
    site: 'uplink',
    ifname: settings.name,
    ifb,
    egress: tree('egress', settings.name),
    ingress: tree('ingress', ifb),
    classIds: {},
    classifier: members.flatMap((member) =>
      member.cgroup && member.egress ? [{ level: member.cgroup.level, cgroupId: member.cgroup.id, classid: (HTB_MAJOR << 16) | member.minor }] : [],
    ),
  };
}
