/**
 * The desired state as `tc -batch` and `ip -batch` scripts. Every word placed in a line is either
 * a number formatted here or a device name that passed `safeWord` again, so no value can end a
 * line early or start a second command.
 */
import type { AttachmentPlan, HtbClassSpec, LeafQueueSpec, ShapingTree, U32FilterSpec } from './tree.ts';
import { HTB_MAJOR, IFB_MTU, IFB_TXQUEUELEN, REDIRECT_PREF } from './tree.ts';
import { formatKey, MATCH_ALL } from './u32.ts';

const SAFE_WORD = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

export class UnsafeWordError extends Error {}

/** Defence in depth: the env layer already refuses such names. */
export function safeWord(word: string): string {
  if (!SAFE_WORD.test(word)) throw new UnsafeWordError(`refusing to place ${JSON.stringify(word)} in a tc/ip command`);
  return word;
}

export function classId(minor: number): string {
  return `${HTB_MAJOR.toString(16)}:${minor.toString(16)}`;
}

const QDISC_HANDLE = `${HTB_MAJOR.toString(16)}:`;
const LEAF_HANDLE_BASE = 0x7c00;

function classLine(dev: string, spec: HtbClassSpec): string {
  const parent = spec.parentMinor === undefined ? QDISC_HANDLE : classId(spec.parentMinor);
  return (
    `class add dev ${dev} parent ${parent} classid ${classId(spec.minor)} htb` +
    ` rate ${spec.rateBytes * 8}bit ceil ${spec.ceilBytes * 8}bit` +
    ` burst ${spec.burstBytes} cburst ${spec.cburstBytes} quantum ${spec.quantumBytes} prio ${spec.prio}`
  );
}

function filterLine(dev: string, filter: U32FilterSpec): string {
  return (
    `filter add dev ${dev} parent ${QDISC_HANDLE} protocol ${filter.protocol} pref ${filter.pref} u32 ` +
    `${filter.keys.map(formatKey).join(' ')} flowid ${classId(filter.flowidMinor)}`
  );
}

/** A leaf's qdisc handle: 7c00 + its class's minor ("7c05:10" -> "7c10:"), clear of handles people pick. */
export function leafHandle(classMinor: number): string {
  return `${(LEAF_HANDLE_BASE + classMinor).toString(16)}:`;
}

function leafLine(dev: string, leaf: LeafQueueSpec): string {
  return (
    `qdisc add dev ${dev} parent ${classId(leaf.classMinor)} handle ${leafHandle(leaf.classMinor)} tbf` +
    ` rate ${leaf.rateBytes * 8}bit burst ${leaf.burstBytes} limit ${leaf.limitBytes}`
  );
}

export function treeLines(tree: ShapingTree): string[] {
  const dev = safeWord(tree.dev);
  return [
    `qdisc add dev ${dev} root handle ${QDISC_HANDLE} htb default ${tree.defaultMinor.toString(16)}`,
    ...tree.classes.map((spec) => classLine(dev, spec)),
    ...tree.leaves.map((leaf) => leafLine(dev, leaf)),
    ...tree.filters.map((filter) => filterLine(dev, filter)),
  ];
}

/**
 * ip -batch lines creating the attachment's ifb, then listing every link (which tells the pod
 * interface's MTU and root qdisc): one process prepares a fresh ADD. The ifb takes any frame the
 * pod interface receives (GRO aggregates included), so its MTU is the largest there is.
 */
export function prepareLines(ifb: string | undefined): string[] {
  const create = ifb === undefined ? [] : [
    `link add name ${safeWord(ifb)} mtu ${IFB_MTU} txqueuelen ${IFB_TXQUEUELEN} type ifb`,
    `link set dev ${safeWord(ifb)} up`,
  ];
  return [...create, 'link show'];
}

/** tc -batch lines installing both directions; the ifb's tree exists before traffic is sent to it. */
export function setupLines(plan: AttachmentPlan): string[] {
  const ifname = safeWord(plan.ifname);
  const lines = plan.egress ? treeLines(plan.egress) : [];
  if (plan.ingress) {
    lines.push(
      ...treeLines(plan.ingress),
      `qdisc add dev ${ifname} handle ffff: ingress`,
      `filter add dev ${ifname} parent ffff: protocol all pref ${REDIRECT_PREF} u32 ${formatKey(MATCH_ALL)} ` +
        `action mirred egress redirect dev ${safeWord(plan.ifb)}`,
    );
  }
  return lines;
}

export interface Installed {
  readonly rootQdisc: boolean;
  readonly ingressQdisc: boolean;
}

/** tc -batch lines removing what tcqos installed on the pod interface (the ifb goes with `ip link del`). */
export function teardownLines(ifname: string, installed: Installed): string[] {
  const dev = safeWord(ifname);
  return [
    // With the handle named, the kernel refuses to delete a root qdisc that is not tcqos's.
    ...(installed.rootQdisc ? [`qdisc del dev ${dev} root handle ${QDISC_HANDLE}`] : []),
    ...(installed.ingressQdisc ? [`qdisc del dev ${dev} ingress`] : []),
  ];
}

export function script(lines: readonly string[]): string {
  return lines.map((line) => `${line}\n`).join('');
}
