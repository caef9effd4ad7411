/**
 * Name rules, in one place. The interface-name rule: what tcqos accepts as CNI_IFNAME, as an uplink's name,
 * and as a word it writes into an ip/tc command. Linux allows 15 bytes of almost anything; this is
 * the safe subset no shell, tc batch line or sysfs path can misread.
 */
export const IFNAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

/** The rule in words, for messages. */
export const IFNAME_RULE = '1-15 of A-Z a-z 0-9 _ . -, starting with a letter or digit';

export function isInterfaceName(name: string): boolean {
  return IFNAME_PATTERN.test(name);
}

/**
 * kubelet's --cgroup-root: "/" or absolute plain names ("/kube", "/a/b"); it becomes part of a path
 * under the cgroup2 mount, so nothing else passes ("." and ".." are refused in settings.ts).
 */
export const CGROUP_ROOT_RULE = 'an absolute path of plain names (A-Z a-z 0-9 _ . -), like "/" or "/kube"';
export const CGROUP_ROOT_PATTERN = /^\/(?:[A-Za-z0-9_.-]{1,255}(?:\/[A-Za-z0-9_.-]{1,255})*\/?)?$/;
