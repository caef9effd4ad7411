/**
 * The desired state as `tc -batch` and `ip -batch` scripts. Every word placed in a line is either
 * a number formatted here or a device name that passed `safeWord` again, so no value can end a
 * line early or start a second command.
 */
import { IFNAME_PATTERN } from '../config/names.ts';
import { CLASSIFIER_SECTION } from '../bpf/classifier.ts';
import { classId, CLASSIFIER_PREF, leafHandle, QDISC_HANDLE, REDIRECT_PREF } from '../tc/handles.ts';
import { IFB_MTU, IFB_TXQUEUELEN, ifbTree, rootTree, type AttachmentPlan, type Site, type HtbClassSpec, type LeafQueueSpec, type ShapingTree, type U32FilterSpec } from './tree.ts';
import { formatKey, MATCH_ALL } from './u32.ts';

export class UnsafeWordError extends Error {}

/** Defence in depth: the env layer already refuses such names. */
export function safeWord(word: string): string {
  if (!IFNAME_PATTERN.test(word)) throw new UnsafeWordError(`refusing to place ${JSON.stringify(word)} in a tc/ip command`);
  return word;
}

function classParent(spec: HtbClassSpec): string {
  return spec.parentMinor === undefined ? QDISC_HANDLE : classId(spec.parentMinor);
}

/** `add` installs a class; `change` retunes a live one (its queue and counters stay). */
export function classLine(verb: 'add' | 'change', dev: string, spec: HtbClassSpec): string {
  return (
    `class ${verb} dev ${safeWord(dev)} parent ${classParent(spec)} classid ${classId(spec.minor)} htb` +
    ` rate ${spec.rateBytes * 8}bit ceil ${spec.ceilBytes * 8}bit` +
    ` burst ${spec.burstBytes} cburst ${spec.cburstBytes} quantum ${spec.quantumBytes} prio ${spec.prio}`
  );
}

export function classDeleteLine(dev: string, minor: number): string {
  return `class del dev ${safeWord(dev)} classid ${classId(minor)}`;
}

export function filterLine(dev: string, filter: U32FilterSpec): string {
  return (
    `filter add dev ${safeWord(dev)} parent ${QDISC_HANDLE} protocol ${filter.protocol} pref ${filter.pref} u32 ` +
    `${filter.keys.map(formatKey).join(' ')} flowid ${classId(filter.flowidMinor)}`
  );
}

/** Removes every filter at one preference (all protocols): how a changed rule is replaced. */
export function filterDeleteLine(dev: string, pref: number): string {
  return `filter del dev ${safeWord(dev)} parent ${QDISC_HANDLE} pref ${pref}`;
}

/** `add` installs a leaf queue; `change` retunes a live one (its queued packets stay). */
export function leafLine(dev: string, leaf: LeafQueueSpec, verb: 'add' | 'change' = 'add'): string {
  return (
    `qdisc ${verb} dev ${safeWord(dev)} parent ${classId(leaf.classMinor)} handle ${leafHandle(leaf.classMinor)} tbf` +
    ` rate ${leaf.rateBytes * 8}bit burst ${leaf.burstBytes} limit ${leaf.limitBytes}`
  );
}

/** Removes the queue under a class (HTB puts its default queue back until a new one is added). */
export function leafDeleteLine(dev: string, classMinor: number): string {
  return `qdisc del dev ${safeWord(dev)} parent ${classId(classMinor)}`;
}

/**
 * `direct_qlen 0`: HTB sends a packet whose priority names the qdisc itself (SO_PRIORITY, which a
 * pod with CAP_NET_RAW may set to anything) through an unshaped direct queue; with no room there,
 * such packets are dropped instead (measured: 1967 Mbit/s through a 10 Mbit/s cap before).
 */
export function treeLines(tree: ShapingTree): string[] {
  const dev = safeWord(tree.dev);
  return [
    `qdisc add dev ${dev} root handle ${QDISC_HANDLE} htb default ${tree.defaultMinor.toString(16)} direct_qlen 0`,
    ...tree.classes.map((spec) => classLine('add', dev, spec)),
    ...tree.leaves.map((leaf) => leafLine(dev, leaf)),
    ...tree.filters.map((filter) => filterLine(dev, filter)),
  ];
}

/**
 * ip -batch lines creating the site's ifb, then listing the interface and the ifb (which tells the
 * interface's MTU and root qdisc): one process prepares a fresh ADD. The ifb takes any frame the
 * interface receives (GRO aggregates included), so its MTU is the largest there is.
 */
export function prepareLines(ifname: string, ifb: string, createIfb: boolean): string[] {
  return [...(createIfb ? createIfbLines(ifb) : []), ...showLinkLines([ifname, ifb])];
}

/** ip -batch lines listing these links (a missing one, under -force, just prints nothing). */
export function showLinkLines(devices: readonly string[]): string[] {
  return devices.map((device) => `link show dev ${safeWord(device)}`);
}

/** ip -batch lines creating the attachment's ifb, up. */
export function createIfbLines(ifb: string): string[] {
  return [`link add name ${safeWord(ifb)} mtu ${IFB_MTU} txqueuelen ${IFB_TXQUEUELEN} type ifb`, `link set dev ${safeWord(ifb)} up`];
}

/**
 * The hook on the interface's ingress and its redirect of every packet to the ifb: an `ingress`
 * qdisc on an attachment's interface; a `clsact` on the uplink, whose egress hook also runs the
 * classifier (an ingress qdisc and a clsact cannot be on one device together).
 */
export function redirectLines(ifname: string, ifb: string, site: Site): string[] {
  const dev = safeWord(ifname);
  const redirect = `protocol all pref ${REDIRECT_PREF} u32 ${formatKey(MATCH_ALL)} action mirred egress redirect dev ${safeWord(ifb)}`;
  return hookKind(site) === 'clsact'
    ? [`qdisc add dev ${dev} clsact`, `filter add dev ${dev} ingress ${redirect}`]
    : [`qdisc add dev ${dev} handle ffff: ingress`, `filter add dev ${dev} parent ffff: ${redirect}`];
}

/** Removes the filters at the redirect's preference (one sending nowhere, before it is added again). */
export function redirectDeleteLine(ifname: string, site: Site): string {
  const where = hookKind(site) === 'clsact' ? 'ingress' : 'parent ffff:';
  return `filter del dev ${safeWord(ifname)} ${where} pref ${REDIRECT_PREF}`;
}

export function hookKind(site: Site): 'ingress' | 'clsact' {
  return site === 'uplink' ? 'clsact' : 'ingress';
}

/** An object file tc can be pointed at: an absolute path of plain characters (it is a word of a batch line). */
export function safePath(path: string): string {
  if (!/^\/[A-Za-z0-9._/-]{1,4000}$/.test(path) || path.includes('/../')) throw new UnsafeWordError(`refusing to place ${JSON.stringify(path)} in a tc command`);
  return path;
}

/** The uplink's classifier on its clsact egress; `replace` swaps the program in one step. */
export function classifierLine(ifname: string, objectPath: string, verb: 'add' | 'replace'): string {
  return `filter ${verb} dev ${safeWord(ifname)} egress protocol all pref ${CLASSIFIER_PREF} handle 1 bpf da obj ${safePath(objectPath)} sec ${CLASSIFIER_SECTION}`;
}

/** tc -batch lines installing both trees; the ifb's tree exists before traffic is sent to it. */
export function setupLines(plan: AttachmentPlan): string[] {
  const atRoot = rootTree(plan);
  const onIfb = ifbTree(plan);
  const lines = atRoot ? treeLines(atRoot) : [];
  if (onIfb) lines.push(...treeLines(onIfb), ...redirectLines(plan.ifname, plan.ifb, plan.site));
  return lines;
}

export interface Installed {
  readonly rootQdisc: boolean;
  /** The hook feeding the ifb, by kind. */
  readonly ingressQdisc: 'ingress' | 'clsact' | undefined;
}

/** tc -batch lines removing what tcqos installed on the interface (the ifb goes with `ip link del`). */
export function teardownLines(ifname: string, installed: Installed): string[] {
  const dev = safeWord(ifname);
  return [
    // With the handle named, the kernel refuses to delete a root qdisc that is not tcqos's.
    ...(installed.rootQdisc ? [`qdisc del dev ${dev} root handle ${QDISC_HANDLE}`] : []),
    ...(installed.ingressQdisc ? [`qdisc del dev ${dev} ${installed.ingressQdisc}`] : []),
  ];
}

export function script(lines: readonly string[]): string {
  return lines.map((line) => `${line}\n`).join('');
}
