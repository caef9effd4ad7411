/**
 * A Kubernetes pod's cgroup v2, found from its UID: where the uplink classifier recognises the pod's
 * packets. The CNI ADD is not told the pod's cgroup, but kubelet names it from the pod UID
 * (`K8S_POD_UID`), by its cgroup driver and the pod's QoS class, and creates it before the sandbox,
 * so it exists when the ADD runs; the containers' cgroups come later, under it, which is why the
 * classifier matches the pod's cgroup as an ancestor of the sender's.
 *
 * The cgroup's id is its directory's inode number (on 64-bit kernels the kernfs node id, which is
 * what bpf_skb_cgroup_id() and bpf_skb_ancestor_cgroup_id() return), and its level is its depth
 * below the root of the whole hierarchy (the root is 0). Only a mount showing that root gives the
 * level: inside a cgroup namespace, or through a bind mount of a subtree, the directory mounted looks
 * like a root but is not. The real root is told apart by what it lacks: every other cgroup has a
 * `cgroup.type` file (Linux 4.14 on). A DaemonSet pod with a private cgroup namespace therefore needs
 * the host's /sys/fs/cgroup mounted (hostPath); a CNI plugin started by the runtime sees it anyway.
 */
import { existsSync, lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface PodCgroup {
  /** Absolute path of the pod's cgroup directory. */
  readonly path: string;
  /** The cgroup id (the directory's inode number). */
  readonly id: bigint;
  /** Depth below the hierarchy's root. */
  readonly level: number;
}

/** mountinfo escapes space, tab, newline and backslash as octal (\040...). */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

/** Where cgroup2 filesystems are mounted, in a /proc/self/mountinfo text. */
export function cgroup2MountPoints(mountinfo: string): string[] {
  const points: string[] = [];
  for (const line of mountinfo.split('\n')) {
    // id parent major:minor root mountpoint options [optional fields...] - fstype source superoptions
    const fields = line.split(' ');
    const separator = fields.indexOf('-');
    if (separator >= 6 && fields[separator + 1] === 'cgroup2') points.push(unescape(fields[4]!));
  }
  return points;
}

/**
 * The mount point showing the cgroup2 hierarchy's root (/sys/fs/cgroup on cgroup2-only nodes,
 * /sys/fs/cgroup/unified on hybrid ones); undefined when cgroup2 is not mounted (also under
 * `ip netns exec`, which mounts a fresh /sys). Throws when it is mounted only as subtrees: no level
 * could be trusted.
 */
export function cgroup2Root(mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): string | undefined {
  const points = cgroup2MountPoints(mountinfo);
  const root = points.find((point) => existsSync(join(point, 'cgroup.procs')) && !existsSync(join(point, 'cgroup.type')));
  if (root === undefined && points.length > 0) {
    throw new Error(
      `cgroup2 is mounted only as a subtree here (${points.join(', ')}: a cgroup namespace or a bind mount); ` +
        "a pod cgroup's level below the hierarchy's root cannot be known: mount the host's /sys/fs/cgroup",
    );
  }
  return root;
}

function depth(path: string): number {
  return path.split('/').filter((part) => part !== '').length;
}

/**
 * A pod UID as kubelet names cgroups after it: an API server's UUID (8-4-4-4-12 lowercase hex) or a
 * static pod's (32 hex digits, kubelet's hash of the manifest). It becomes part of a path: nothing
 * else passes.
 */
const POD_UID = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$/;

export function isPodUid(uid: string): boolean {
  return POD_UID.test(uid);
}

/** kubelet's --cgroup-root as path components below the cgroup2 root ("/" is none). */
function rootComponents(cgroupRoot: string): string[] {
  const parts = cgroupRoot.split('/').filter((part) => part !== '');
  for (const part of parts) {
    if (!/^[A-Za-z0-9_.-]{1,255}$/.test(part) || part === '.' || part === '..') {
      throw new Error(`cgroup root ${JSON.stringify(cgroupRoot)}: expected a path of plain names like "/" or "/kube"`);
    }
  }
  return parts;
}

/** kubelet's QoS tiers: guaranteed pods sit directly in kubepods. */
const QOS_TIERS: ReadonlyArray<readonly string[]> = [[], ['burstable'], ['besteffort']];

/**
 * systemd driver: each name's "-" becomes "_" (a "-" is a step in systemd's slice hierarchy), and
 * the cgroup of names a, b, c is a.slice/a-b.slice/a-b-c.slice.
 */
function systemdPath(names: readonly string[]): string {
  const escaped = names.map((name) => name.replaceAll('-', '_'));
  return escaped.map((_, n) => `${escaped.slice(0, n + 1).join('-')}.slice`).join('/');
}

/**
 * Where kubelet puts a pod's cgroup, relative to the cgroup2 root: for both cgroup drivers
 * (cgroupfs: kubepods/burstable/pod<uid>; systemd: kubepods.slice/kubepods-burstable.slice/
 * kubepods-burstable-pod<uid with _>.slice) and the three QoS classes, under kubelet's --cgroup-root.
 */
export function podCgroupCandidates(uid: string, cgroupRoot = '/'): string[] {
  if (!isPodUid(uid)) throw new Error(`pod UID ${JSON.stringify(uid)} is not a Kubernetes UID`);
  const root = rootComponents(cgroupRoot);
  return QOS_TIERS.flatMap((tier) => {
    const names = [...root, 'kubepods', ...tier, `pod${uid}`];
    return [join(...names), systemdPath(names)];
  });
}

export interface FindOptions {
  /** kubelet's --cgroup-root (default "/"). */
  readonly cgroupRoot?: string;
  /** The mountinfo text (default: /proc/self/mountinfo). */
  readonly mountinfo?: string;
}

/**
 * The pod's cgroup, or undefined when none of kubelet's layouts has it (not a Kubernetes pod, or no
 * cgroup2 mounted). Two existing layouts for one pod are refused: a match against the wrong one would
 * classify nothing.
 */
export function findPodCgroup(uid: string, options: FindOptions = {}): PodCgroup | undefined {
  const candidates = podCgroupCandidates(uid, options.cgroupRoot);
  const mount = cgroup2Root(options.mountinfo);
  if (mount === undefined) return undefined;
  const found: PodCgroup[] = [];
  for (const relative of candidates) {
    const path = join(mount, relative);
    const stat = lstatSync(path, { bigint: true, throwIfNoEntry: false });
    if (stat?.isDirectory()) found.push({ path, id: stat.ino, level: depth(relative) });
  }
  if (found.length > 1) throw new Error(`pod ${uid} has more than one cgroup: ${found.map((cgroup) => cgroup.path).join(', ')}`);
  return found[0];
}
