/** Desired vs observed tc state: the list of differences CHECK reports (empty when they agree). */
import { formatRate } from '../config/units.ts';
import type { ClassInfo, FilterInfo, LinkInfo, QdiscInfo, U32Key } from '../netns/observe.ts';
import { classId, leafHandle } from './batch.ts';
import type { AttachmentPlan, ShapingTree } from './tree.ts';
import { HTB_MAJOR } from './tree.ts';
import { formatKey, MATCH_ALL } from './u32.ts';

export interface ObservedTree {
  /** The root qdisc of the device (undefined when the device is missing). */
  readonly qdisc: QdiscInfo | undefined;
  /** The qdiscs under its classes. */
  readonly leaves: readonly QdiscInfo[];
  readonly classes: readonly ClassInfo[];
  readonly filters: readonly FilterInfo[];
}

export interface ObservedAttachment {
  readonly iface: LinkInfo | undefined;
  readonly ifb: LinkInfo | undefined;
  readonly egress: ObservedTree;
  readonly ingressQdisc: QdiscInfo | undefined;
  readonly redirects: readonly FilterInfo[];
  readonly ingress: ObservedTree;
}

export const OUR_HANDLE = `${HTB_MAJOR.toString(16)}:`;

export function isOurs(qdisc: QdiscInfo | undefined): boolean {
  return qdisc?.kind === 'htb' && qdisc.handle === OUR_HANDLE;
}

/** tc prints rates truncated to its display precision (at worst 1 part in 1000). */
function sameRate(observed: number | undefined, expected: number): boolean {
  return observed !== undefined && Math.abs(observed - expected) <= expected / 1000 + 8;
}

function filterSignature(filter: { protocol: string; pref: number; keys: readonly U32Key[] }, flowid: string | undefined): string {
  const keys = filter.keys.map(formatKey).sort().join(' ');
  return `protocol ${filter.protocol} pref ${filter.pref} ${keys} -> ${flowid ?? 'none'}`;
}

function compareTree(label: string, planned: ShapingTree | undefined, observed: ObservedTree, dev: string): string[] {
  if (!planned) {
    return isOurs(observed.qdisc) ? [`${label}: a tcqos HTB tree is on ${dev} but ${label} is not configured`] : [];
  }
  if (!observed.qdisc) return [`${label}: device ${dev} is missing`];
  if (!isOurs(observed.qdisc)) {
    return [`${label}: root qdisc on ${dev} is ${observed.qdisc.kind} ${observed.qdisc.handle}, not tcqos's htb ${OUR_HANDLE}`];
  }
  const drift: string[] = [];
  const wantedDefault = planned.defaultMinor.toString(16);
  if (observed.qdisc.defaultClass !== wantedDefault) {
    drift.push(`${label}: default class is ${OUR_HANDLE}${observed.qdisc.defaultClass ?? '?'}, expected ${OUR_HANDLE}${wantedDefault}`);
  }
  const byId = new Map(observed.classes.map((c) => [c.id, c]));
  for (const spec of planned.classes) {
    const id = classId(spec.minor);
    const seen = byId.get(id);
    byId.delete(id);
    const name = `${label}: class "${spec.name}" (${id})`;
    if (!seen) {
      drift.push(`${name} is missing`);
      continue;
    }
    if (!sameRate(seen.rate, spec.rateBytes * 8)) drift.push(`${name} rate is ${formatRate(seen.rate ?? 0)}, expected ${formatRate(spec.rateBytes * 8)}`);
    if (!sameRate(seen.ceil, spec.ceilBytes * 8)) drift.push(`${name} ceil is ${formatRate(seen.ceil ?? 0)}, expected ${formatRate(spec.ceilBytes * 8)}`);
    if (seen.prio !== undefined && seen.prio !== spec.prio) drift.push(`${name} priority is ${seen.prio}, expected ${spec.prio}`);
    if (seen.quantum !== undefined && seen.quantum !== spec.quantumBytes) drift.push(`${name} quantum is ${seen.quantum}, expected ${spec.quantumBytes}`);
    const parent = spec.parentMinor === undefined ? undefined : classId(spec.parentMinor);
    if ((seen.parent ?? undefined) !== parent) drift.push(`${name} hangs under ${seen.parent ?? 'the qdisc'}, expected ${parent ?? 'the qdisc'}`);
  }
  for (const extra of byId.keys()) drift.push(`${label}: unexpected class ${extra} on ${dev}`);

  for (const leaf of planned.leaves) {
    const seen = observed.leaves.find((q) => q.parent === classId(leaf.classMinor));
    const where = `${label}: queue under ${classId(leaf.classMinor)}`;
    if (!seen) drift.push(`${where} is missing`);
    else if (seen.kind !== 'tbf' || seen.handle !== leafHandle(leaf.classMinor)) drift.push(`${where} is ${seen.kind} ${seen.handle}, expected tbf ${leafHandle(leaf.classMinor)}`);
    else if (seen.limit !== undefined && seen.limit !== leaf.limitBytes) drift.push(`${where} holds ${seen.limit} bytes, expected ${leaf.limitBytes}`);
  }

  const seenFilters = new Map<string, number>();
  for (const filter of observed.filters) {
    const signature = filterSignature(filter, filter.flowid);
    seenFilters.set(signature, (seenFilters.get(signature) ?? 0) + 1);
  }
  for (const filter of planned.filters) {
    const signature = filterSignature(filter, classId(filter.flowidMinor));
    const count = seenFilters.get(signature) ?? 0;
    if (count === 0) drift.push(`${label}: filter missing on ${dev}: ${signature}`);
    else seenFilters.set(signature, count - 1);
  }
  for (const [signature, count] of seenFilters) {
    if (count > 0) drift.push(`${label}: unexpected filter on ${dev}: ${signature}`);
  }
  return drift;
}

export function findDrift(plan: AttachmentPlan, observed: ObservedAttachment): string[] {
  if (!observed.iface) return [`interface ${plan.ifname} is missing`];
  const drift = compareTree('egress', plan.egress, observed.egress, plan.ifname);
  if (!plan.ingress) {
    if (observed.ifb) drift.push(`ingress: ifb ${plan.ifb} exists but ingress is not configured`);
    return drift;
  }
  if (!observed.ifb) return [...drift, `ingress: ifb ${plan.ifb} is missing`];
  if (!observed.ifb.up) drift.push(`ingress: ifb ${plan.ifb} is down`);
  if (!observed.ingressQdisc) {
    drift.push(`ingress: no ingress qdisc on ${plan.ifname}`);
  } else {
    const redirect = observed.redirects.find(
      (filter) => filter.redirectTo === plan.ifb && filter.keys.length === 1 && formatKey(filter.keys[0]!) === formatKey(MATCH_ALL),
    );
    if (!redirect) drift.push(`ingress: no filter on ${plan.ifname} redirects to ${plan.ifb}`);
  }
  return [...drift, ...compareTree('ingress', plan.ingress, observed.ingress, plan.ifb)];
}
