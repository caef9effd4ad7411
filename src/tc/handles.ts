/**
 * How tcqos names what it installs, so it can find (and only ever touch) its own state:
 * handles, filter preferences and the ifb's name.
 */
import { createHash } from 'node:crypto';

/** Major handle of every tcqos HTB qdisc ("tc qos"). */
export const HTB_MAJOR = 0x7c05;
/** The HTB qdisc's handle as tc writes it. */
export const QDISC_HANDLE = `${HTB_MAJOR.toString(16)}:`;
/** The class holding a direction's total; every shaped class hangs under it. */
export const ROOT_CLASS_MINOR = 1;
/** The first minor given to a configured class (0x10, 0x11, ... kept for the attachment's life). */
export const FIRST_CLASS_MINOR = 0x10;
/** HTB allows minors up to 0xffff; far more than the classes a direction may have. */
export const LAST_CLASS_MINOR = 0xfff;
/** The ingress redirect filter's preference doubles as tcqos's mark on the ingress qdisc. */
export const REDIRECT_PREF = HTB_MAJOR;
/** The uplink's classifier on its clsact egress (the priority it writes picks the HTB class). */
export const CLASSIFIER_PREF = HTB_MAJOR + 1;
/**
 * The catch-all filter sending unmatched traffic to the default class. HTB's own `default` cannot
 * be changed on a live qdisc, so the default class is chosen by this filter, which an update can
 * replace; the qdisc's `default` only backs it up.
 */
export const CATCH_ALL_PREF = 0x7c04;
/** Leaf queue handles: 7c00 + the class's minor ("7c05:10" -> "7c10:"), clear of handles people pick. */
const LEAF_HANDLE_BASE = 0x7c00;

export function classId(minor: number): string {
  return `${HTB_MAJOR.toString(16)}:${minor.toString(16)}`;
}

/** The minor of one of tcqos's class ids ("7c05:1a" -> 0x1a); undefined for anyone else's. */
export function minorOf(id: string): number | undefined {
  const found = /^7c05:([0-9a-f]{1,4})$/.exec(id);
  return found ? Number.parseInt(found[1]!, 16) : undefined;
}

export function leafHandle(classMinor: number): string {
  return `${(LEAF_HANDLE_BASE + classMinor).toString(16)}:`;
}

/** ifb device name for an attachment: "tcq" + 12 hex digits of its interface name (15 chars). */
export function ifbName(ifname: string): string {
  return `tcq${createHash('sha256').update(ifname).digest('hex').slice(0, 12)}`;
}
