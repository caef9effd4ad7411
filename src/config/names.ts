/**
 * The interface-name rule, in one place: what tcqos accepts as CNI_IFNAME, as an uplink's name,
 * and as a word it writes into an ip/tc command. Linux allows 15 bytes of almost anything; this is
 * the safe subset no shell, tc batch line or sysfs path can misread.
 */
export const IFNAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

/** The rule in words, for messages. */
export const IFNAME_RULE = '1-15 of A-Z a-z 0-9 _ . -, starting with a letter or digit';

export function isInterfaceName(name: string): boolean {
  return IFNAME_PATTERN.test(name);
}
