/**
 * Desired vs observed tc state as typed changes. CHECK prints them (one line each); an update turns
 * them into tc lines that move the kernel to the plan without re-creating a qdisc.
 */
import type { Direction } from '../config/policy.ts';
import { formatRate } from '../config/units.ts';
import { classId, leafHandle, minorOf, QDISC_HANDLE, REDIRECT_PREF } from '../tc/handles.ts';
import { isOurs } from '../tc/ownership.ts';
import type { ClassInfo, FilterInfo, ObservedAttachment, ObservedTree, QdiscInfo, U32Key } from '../tc/types.ts';
import { directionAtRoot, ifbTree, rootTree, type AttachmentPlan, type HtbClassSpec, type LeafQueueSpec, type ShapingTree, type U32FilterSpec } from './tree.ts';
import { formatKey, MATCH_ALL } from './u32.ts';

export type TreeChange =
  /** No tcqos tree: `qdisc` is the kernel's default root there, or undefined when the device is missing. */
  | { readonly kind: 'tree-missing'; readonly qdisc: QdiscInfo | undefined }
  | { readonly kind: 'tree-foreign'; readonly qdisc: QdiscInfo }
  | { readonly kind: 'tree-unwanted' }
  | { readonly kind: 'class-missing'; readonly spec: HtbClassSpec }
  /** Same place in the tree, other parameters: `tc class change` fixes it live. */
  | { readonly kind: 'class-changed'; readonly spec: HtbClassSpec; readonly differences: readonly string[] }
  /** Under another parent: HTB cannot move a class, so it is deleted and added again. */
  | { readonly kind: 'class-moved'; readonly spec: HtbClassSpec; readonly seenParent: string | undefined }
  | { readonly kind: 'class-extra'; readonly id: string }
  | { readonly kind: 'leaf-missing'; readonly leaf: LeafQueueSpec }
  | { readonly kind: 'leaf-changed'; readonly leaf: LeafQueueSpec; readonly seen: QdiscInfo }
  | { readonly kind: 'leaf-foreign'; readonly leaf: LeafQueueSpec; readonly seen: QdiscInfo }
  /** `prefInUse`: other filters sit at its preference (an update replaces them all at once). */
  | { readonly kind: 'filter-missing'; readonly filter: U32FilterSpec; readonly prefInUse: boolean }
  | { readonly kind: 'filter-extra'; readonly filter: FilterInfo };

export type AttachmentChange =
  | { readonly kind: 'interface-missing' }
  | { readonly kind: 'ifb-missing' }
  | { readonly kind: 'ifb-down' }
  | { readonly kind: 'ifb-unwanted' }
  | { readonly kind: 'ingress-qdisc-missing' }
  /** `replace`: a filter of tcqos's sits at the redirect's preference but sends nowhere (its ifb was deleted). */
  | { readonly kind: 'redirect-missing'; readonly replace: boolean }
  | { readonly kind: 'tree'; readonly direction: Direction; readonly dev: string; readonly change: TreeChange };

/** tc prints rates truncated to its display precision (at worst 1 part in 1000). */
function sameRate(observed: number | undefined, expected: number): boolean {
  return observed !== undefined && Math.abs(observed - expected) <= expected / 1000 + 8;
}

/**
 * HTB keeps a bucket as transmit time in 64 ns ticks and tc prints it back rounded (to whole KiB or
 * MiB when close): a bucket is the same within 1%, a KiB and two ticks at the rate.
 */
function sameSize(observed: number | undefined, expected: number, rateBytes: number): boolean {
  return observed === undefined || Math.abs(observed - expected) <= expected / 100 + 1024 + rateBytes * 128e-9;
}

/** tc prints a tbf's limit back as a latency in whole µs: the same within a µs at the rate. */
function sameLimit(observed: number | undefined, leaf: LeafQueueSpec): boolean {
  return observed !== undefined && Math.abs(observed - leaf.limitBytes) <= leaf.rateBytes / 1e6 + 16;
}

function filterSignature(filter: { protocol: string; pref: number; keys: readonly U32Key[] }, flowid: string | undefined): string {
  const keys = filter.keys.map(formatKey).sort().join(' ');
  return `protocol ${filter.protocol} pref ${filter.pref} ${keys} -> ${flowid ?? 'none'}`;
}

function classDifferences(spec: HtbClassSpec, seen: ClassInfo): string[] {
  const differences: string[] = [];
  if (!sameRate(seen.rate, spec.rateBytes * 8)) differences.push(`rate is ${formatRate(seen.rate ?? 0)}, expected ${formatRate(spec.rateBytes * 8)}`);
  if (!sameRate(seen.ceil, spec.ceilBytes * 8)) differences.push(`ceil is ${formatRate(seen.ceil ?? 0)}, expected ${formatRate(spec.ceilBytes * 8)}`);
  if (!sameSize(seen.burst, spec.burstBytes, spec.rateBytes)) differences.push(`burst is ${seen.burst} bytes, expected ${spec.burstBytes}`);
  if (!sameSize(seen.cburst, spec.cburstBytes, spec.ceilBytes)) differences.push(`cburst is ${seen.cburst} bytes, expected ${spec.cburstBytes}`);
  if (seen.prio !== undefined && seen.prio !== spec.prio) differences.push(`priority is ${seen.prio}, expected ${spec.prio}`);
  if (seen.quantum !== undefined && seen.quantum !== spec.quantumBytes) differences.push(`quantum is ${seen.quantum}, expected ${spec.quantumBytes}`);
  return differences;
}

function diffTree(planned: ShapingTree | undefined, observed: ObservedTree): TreeChange[] {
  if (!planned) return isOurs(observed.qdisc) ? [{ kind: 'tree-unwanted' }] : [];
  if (!observed.qdisc || observed.qdisc.handle === '0:') return [{ kind: 'tree-missing', qdisc: observed.qdisc }];
  if (!isOurs(observed.qdisc)) return [{ kind: 'tree-foreign', qdisc: observed.qdisc }];
  const changes: TreeChange[] = [];
  const byId = new Map(observed.classes.map((c) => [c.id, c]));
  for (const spec of planned.classes) {
    const id = classId(spec.minor);
    const seen = byId.get(id);
    byId.delete(id);
    if (!seen) {
      changes.push({ kind: 'class-missing', spec });
      continue;
    }
    const parent = spec.parentMinor === undefined ? undefined : classId(spec.parentMinor);
    if ((seen.parent ?? undefined) !== parent) {
      changes.push({ kind: 'class-moved', spec, seenParent: seen.parent });
      continue;
    }
    const differences = classDifferences(spec, seen);
    if (differences.length) changes.push({ kind: 'class-changed', spec, differences });
  }
  for (const extra of byId.keys()) changes.push({ kind: 'class-extra', id: extra });

  for (const leaf of planned.leaves) {
    const seen = observed.leaves.find((q) => q.parent === classId(leaf.classMinor));
    if (!seen) changes.push({ kind: 'leaf-missing', leaf });
    else if (seen.kind !== 'tbf' || seen.handle !== leafHandle(leaf.classMinor)) changes.push({ kind: 'leaf-foreign', leaf, seen });
    else if (!sameRate(seen.rate, leaf.rateBytes * 8) || !sameLimit(seen.limit, leaf)) changes.push({ kind: 'leaf-changed', leaf, seen });
  }

  const seenFilters = new Map<string, FilterInfo[]>();
  for (const filter of observed.filters) {
    const signature = filterSignature(filter, filter.flowid);
    seenFilters.set(signature, [...(seenFilters.get(signature) ?? []), filter]);
  }
  for (const filter of planned.filters) {
    const matching = seenFilters.get(filterSignature(filter, classId(filter.flowidMinor)));
    if (matching?.length) matching.pop();
    else changes.push({ kind: 'filter-missing', filter, prefInUse: observed.filters.some((seen) => seen.pref === filter.pref) });
  }
  for (const left of seenFilters.values()) for (const filter of left) changes.push({ kind: 'filter-extra', filter });
  return changes;
}

export function diffAttachment(plan: AttachmentPlan, observed: ObservedAttachment): AttachmentChange[] {
  if (!observed.iface) return [{ kind: 'interface-missing' }];
  const atRoot = directionAtRoot(plan.site);
  const onIfb: Direction = atRoot === 'egress' ? 'ingress' : 'egress';
  const tree = (direction: Direction, dev: string, changes: TreeChange[]): AttachmentChange[] =>
    changes.map((change) => ({ kind: 'tree', direction, dev, change }));
  const changes = tree(atRoot, plan.ifname, diffTree(rootTree(plan), observed.onInterface));
  if (!ifbTree(plan)) {
    if (observed.ifb) changes.push({ kind: 'ifb-unwanted' });
    return changes;
  }
  if (!observed.ifb) changes.push({ kind: 'ifb-missing' });
  else if (!observed.ifb.up) changes.push({ kind: 'ifb-down' });
  if (!observed.ingressQdisc) {
    changes.push({ kind: 'ingress-qdisc-missing' });
  } else {
    const redirect = observed.redirects.find(
      (filter) => filter.redirectTo === plan.ifb && filter.keys.length === 1 && formatKey(filter.keys[0]!) === formatKey(MATCH_ALL),
    );
    // a deleted ifb leaves its redirect sending nowhere, first in line at its preference
    if (!redirect) changes.push({ kind: 'redirect-missing', replace: observed.redirects.some((filter) => filter.pref === REDIRECT_PREF) });
  }
  // no ifb: the caller creates it, and its whole tree is to be added
  const onIfbChanges: TreeChange[] = observed.ifb ? diffTree(ifbTree(plan), observed.onIfb) : [{ kind: 'tree-missing', qdisc: undefined }];
  return [...changes, ...tree(onIfb, plan.ifb, onIfbChanges)];
}

/** The direction the site's ifb carries. */
function ifbDirection(plan: AttachmentPlan): Direction {
  return directionAtRoot(plan.site) === 'egress' ? 'ingress' : 'egress';
}

/** One line per change, as CHECK reports drift. */
export function describeChange(change: AttachmentChange, plan: AttachmentPlan): string {
  switch (change.kind) {
    case 'interface-missing':
      return `interface ${plan.ifname} is missing`;
    case 'ifb-missing':
      return `${ifbDirection(plan)}: ifb ${plan.ifb} is missing`;
    case 'ifb-down':
      return `${ifbDirection(plan)}: ifb ${plan.ifb} is down`;
    case 'ifb-unwanted':
      return `${ifbDirection(plan)}: ifb ${plan.ifb} exists but ${ifbDirection(plan)} is not configured`;
    case 'ingress-qdisc-missing':
      return `${ifbDirection(plan)}: no ingress qdisc on ${plan.ifname}`;
    case 'redirect-missing':
      return `${ifbDirection(plan)}: no filter on ${plan.ifname} redirects to ${plan.ifb}`;
    case 'tree':
      return `${change.direction}: ${describeTreeChange(change.change, change.dev)}`;
  }
}

function describeTreeChange(change: TreeChange, dev: string): string {
  const name = (spec: HtbClassSpec): string => `class "${spec.name}" (${classId(spec.minor)})`;
  switch (change.kind) {
    case 'tree-missing':
    case 'tree-foreign':
      return change.qdisc ? `root qdisc on ${dev} is ${change.qdisc.kind} ${change.qdisc.handle}, not tcqos's htb ${QDISC_HANDLE}` : `device ${dev} is missing`;
    case 'tree-unwanted':
      return `a tcqos HTB tree is on ${dev} but this direction is not configured`;
    case 'class-missing':
      return `${name(change.spec)} is missing`;
    case 'class-changed':
      return `${name(change.spec)} ${change.differences.join(', ')}`;
    case 'class-moved':
      return `${name(change.spec)} hangs under ${change.seenParent ?? 'the qdisc'}, expected ${change.spec.parentMinor === undefined ? 'the qdisc' : classId(change.spec.parentMinor)}`;
    case 'class-extra':
      return `unexpected class ${change.id} on ${dev}`;
    case 'leaf-missing':
      return `queue under ${classId(change.leaf.classMinor)} is missing`;
    case 'leaf-foreign':
      return `queue under ${classId(change.leaf.classMinor)} is ${change.seen.kind} ${change.seen.handle}, expected tbf ${leafHandle(change.leaf.classMinor)}`;
    case 'leaf-changed':
      return (
        `queue under ${classId(change.leaf.classMinor)} runs at ${formatRate(change.seen.rate ?? 0)} holding ${change.seen.limit ?? '?'} bytes, ` +
        `expected ${formatRate(change.leaf.rateBytes * 8)} holding ${change.leaf.limitBytes}`
      );
    case 'filter-missing':
      return `filter missing on ${dev}: ${filterSignature(change.filter, classId(change.filter.flowidMinor))}`;
    case 'filter-extra':
      return `unexpected filter on ${dev}: ${filterSignature(change.filter, change.filter.flowid)}`;
  }
}

/** The minor of an extra class, when it is one of tcqos's ids. */
export function extraMinor(change: TreeChange): number | undefined {
  return change.kind === 'class-extra' ? minorOf(change.id) : undefined;
}
