/**
 * The shared uplink's tree (`uplink.enforce`), converged on the registry: whatever changed (an ADD,
 * a DEL, an update, a pod that vanished, a command killed halfway), one pass under the uplink's lock
 * reads the uplink's tc state, plans the tree of the attachments registered on it now, and applies
 * the difference; with no attachment left it removes the tree, the clsact and the ifb, leaving the
 * uplink as it was found. Nothing tcqos did not install is ever removed: a foreign root qdisc (not
 * one of the kernel's defaults), ingress hook or egress filter on the uplink refuses the change.
 */
import { rmSync } from 'node:fs';
import { classifierObject, kernelTags } from '../bpf/classifier.ts';
import { findPodCgroup } from '../bpf/cgroup.ts';
import type { Logger } from '../log.ts';
import { readLinks, readSite } from '../netns/observe.ts';
import { NetnsSession, withSession, type NetnsIdentity, type SessionOptions } from '../netns/session.ts';
import { classifierLine, createIfbLines, script, teardownLines } from '../plan/batch.ts';
import { describeChange, diffAttachment, type AttachmentChange } from '../plan/diff.ts';
import { updateLines } from '../plan/update.ts';
import { planUplink, RESERVE_MINOR, type UplinkMember, type UplinkPlan, type UplinkSettings } from '../plan/uplink.ts';
import { uplinkLockPath, withLock } from '../state/lock.ts';
import type { AttachmentRecord, UplinkClass } from '../state/record.ts';
import { pathExists, type Registry } from '../state/registry.ts';
import { writeAtomically } from '../state/files.ts';
import { classifierObjectPath, dropUplinkTemps, readUplinkInstall, removeUplinkInstall, writeUplinkInstall } from '../state/uplinks.ts';
import { CLASSIFIER_PREF, minorOf, ROOT_CLASS_MINOR } from '../tc/handles.ts';
import { foreignIngress, foreignRoot, isOurs, type AttachmentState } from '../tc/ownership.ts';
import { ApplyError, DriftError, ForeignQdiscError, UplinkMismatchError } from './errors.ts';

export interface Converged {
  /** The tc lines run (or, in a dry run, that would run). */
  readonly lines: readonly string[];
  /** What differed from the plan (none when the tree was removed). */
  readonly changes: readonly AttachmentChange[];
  /** The plan converged on; undefined when no attachment is left and the tree goes. */
  readonly plan: UplinkPlan | undefined;
  /** The classifier loaded was not the program of the attachments' cgroups. */
  readonly classifierStale: boolean;
}

/** The attachments registered on the uplink whose pods still exist, as members of its tree. */
export function uplinkMembers(records: readonly AttachmentRecord[], name: string): UplinkMember[] {
  return records
    .filter((record) => record.uplink?.name === name && record.uplinkClass && record.uplinkClass.minor > 0 && pathExists(record.netns))
    .map((record) => {
      const { minor, mac, cgroup } = record.uplinkClass!;
      const share = (direction: 'egress' | 'ingress') => {
        const policy = record.policy[direction];
        return policy ? { [direction]: { rate: policy.rate, ceil: policy.ceil } } : {};
      };
      return { minor, mac, ...(cgroup ? { cgroup: { id: BigInt(cgroup.id), level: cgroup.level } } : {}), ...share('egress'), ...share('ingress') };
    });
}

/** An enforced uplink, and the node namespace its tree is in. */
export interface UplinkTarget extends UplinkSettings {
  readonly node: NetnsIdentity;
}

/** The uplink an attachment has a class on, when that uplink is enforced. */
export function enforcedUplinkOf(record: AttachmentRecord | undefined): UplinkTarget | undefined {
  const uplink = record?.uplinkClass && record.node ? record.uplink : undefined;
  return uplink?.enforce ? { name: uplink.name, capacity: uplink.capacity, reserve: uplink.reserve ?? 0, node: record!.node! } : undefined;
}

export interface ConvergeOptions {
  /** Work out the lines only; nothing is written or run. */
  readonly dryRun?: boolean;
  /** Plan as if this record were the registry's (a dry run of an update). */
  readonly assuming?: AttachmentRecord;
}

/**
 * Converges the uplink's tree on the registry, under the uplink's lock. A dry run only reads, so it
 * takes no lock (what it reports may be overtaken by a change in progress).
 */
export async function convergeUplink(registry: Registry, uplink: UplinkTarget, log: Logger, tools: SessionOptions = {}, options: ConvergeOptions = {}): Promise<Converged> {
  const converge = () => withSession(NetnsSession.node(tools, uplink.node), (node) => convergeHeld(registry, uplink, node, log, options));
  return options.dryRun ? converge() : withLock(uplinkLockPath(registry.stateDir, uplink.name), converge, tools.runner ? { runner: tools.runner } : {});
}

async function convergeHeld(registry: Registry, uplink: UplinkSettings, node: NetnsSession, log: Logger, { dryRun = false, assuming }: ConvergeOptions): Promise<Converged> {
  // every writer of the uplink's files holds its lock: a temp file of them now is a killed writer's
  if (!dryRun) dropUplinkTemps(registry.stateDir, uplink.name);
  const records = registry.list().records.filter((record) => !assuming || record.containerId !== assuming.containerId || record.ifname !== assuming.ifname);
  const members = uplinkMembers(assuming ? [...records, assuming] : records, uplink.name);
  const installed = readUplinkInstall(registry.stateDir, uplink.name);
  const { state, observed, egressHook: hookFilters } = await readSite(node, uplink.name, { hook: 'clsact', adoptEmptyClsact: installed !== undefined });
  if (!observed.iface) throw new UplinkMismatchError(`uplink ${uplink.name} is not a link in this node's network namespace`);
  const foreign = foreignRoot(state) ?? foreignIngress(state);
  if (foreign) throw new ForeignQdiscError(uplink.name, foreign.kind, foreign.root ? 'root' : 'ingress', foreign.handle);
  const strangers = hookFilters.filter((filter) => filter.pref !== CLASSIFIER_PREF);
  if (strangers.length) {
    throw new ForeignQdiscError(uplink.name, `clsact with filters tcqos did not install (preference ${strangers[0]!.pref})`, 'ingress', state.ingress!.handle);
  }

  if (!members.length) return tearDown(registry, uplink, node, state, dryRun, log);
  if (!installed && !dryRun) {
    writeUplinkInstall(registry.stateDir, { name: uplink.name, foundRoot: `${state.root?.kind ?? 'none'} ${state.root?.handle ?? ''}`.trim(), installedAt: new Date().toISOString() });
  }
  const plan = planUplink(uplink, members, observed.iface.mtu);
  // the ifb first: the lines put its tree on it and send the uplink's ingress to it
  if (!observed.ifb && !dryRun) await node.mustRun('ip', ['-batch', '-'], script(createIfbLines(plan.ifb)));
  const changes = diffAttachment(plan, observed);
  const classifier = await classifierLines(registry, plan, hookFilters, dryRun);
  const lines = [...updateLines(plan, changes), ...classifier];
  if (lines.length && !dryRun) {
    const tcScript = script(node.faults.intoBatch(lines));
    const ran = await node.run('tc', ['-batch', '-'], tcScript);
    if (ran.exitCode !== 0) throw new ApplyError(`changing the tree of uplink ${uplink.name}`, ran, tcScript);
    log.info({ uplink: uplink.name, members: members.length, lines: lines.length }, 'uplink tree converged');
  }
  return { lines, changes, plan, classifierStale: classifier.length > 0 };
}

/**
 * The classifier line when the one loaded is not the program of these rules: the kernel's tag of
 * the loaded program is compared with the tag of the program the rules make, so what is in force
 * is read from the kernel, never from a memo.
 */
async function classifierLines(registry: Registry, plan: UplinkPlan, loaded: readonly { pref: number; programTag?: string }[], dryRun: boolean): Promise<string[]> {
  const tags = kernelTags(plan.classifier);
  const current = loaded.find((filter) => filter.pref === CLASSIFIER_PREF);
  if (current?.programTag && (current.programTag === tags.sha256 || current.programTag === tags.sha1)) return [];
  const objectPath = classifierObjectPath(registry.stateDir, plan.ifname);
  if (!dryRun) writeAtomically(objectPath, classifierObject(plan.classifier));
  return [classifierLine(plan.ifname, objectPath, current ? 'replace' : 'add')];
}


/** No attachment left: the tree, the clsact and the ifb go, and the uplink is as tcqos found it. */
async function tearDown(
  registry: Registry,
  uplink: UplinkSettings,
  node: NetnsSession,
  state: AttachmentState,
  dryRun: boolean,
  log: Logger,
): Promise<Converged> {
  const lines = teardownLines(uplink.name, { rootQdisc: isOurs(state.root), ingressQdisc: state.ingressIsOurs ? 'clsact' : undefined });
  const removed = { lines, changes: [], plan: undefined, classifierStale: false };
  if (dryRun) return removed;
  if (lines.length) await node.mustRun('tc', ['-batch', '-'], script(lines));
  if (state.ifbExists) await node.mustRun('ip', ['link', 'del', 'dev', state.ifb]);
  rmSync(classifierObjectPath(registry.stateDir, uplink.name), { force: true });
  removeUplinkInstall(registry.stateDir, uplink.name);
  if (lines.length || state.ifbExists) log.info({ uplink: uplink.name }, 'last attachment gone: uplink tree removed');
  return removed;
}

/**
 * The attachment's class on an enforced uplink, before its minor is given (0): its interface's MAC,
 * read from the kernel, and its pod's cgroup when one of kubelet's layouts has it. The interface
 * must be a macvlan (or ipvlan) on the uplink itself: its egress leaves through the uplink's root.
 * Undefined for a pod shaped on a host end: routed traffic reaches the uplink forwarded, without
 * its socket or its MAC (docs/design.md).
 */
export async function uplinkClassFor(
  pod: NetnsSession,
  ifname: string,
  uplink: UplinkSettings,
  identity: { readonly uid?: string; readonly cgroupRoot?: string; readonly node?: NetnsIdentity },
  tools: SessionOptions,
): Promise<UplinkClass> {
  const [iface] = await readLinks(pod, [ifname]);
  const [master] = await withSession(NetnsSession.node(tools, identity.node), (node) => readLinks(node, [uplink.name]));
  if (!master) throw new UplinkMismatchError(`uplink ${uplink.name} is not a link in this node's network namespace`);
  if (!iface?.address || (iface.kind !== 'macvlan' && iface.kind !== 'ipvlan') || iface.linkIndex !== master.ifindex) {
    throw new UplinkMismatchError(`${ifname} is not a macvlan on uplink ${uplink.name}: its traffic would not pass the uplink's tree (uplink.enforce)`);
  }
  const cgroup = identity.uid ? findPodCgroup(identity.uid, identity.cgroupRoot ? { cgroupRoot: identity.cgroupRoot } : {}) : undefined;
  return { minor: 0, mac: iface.address, ...(cgroup ? { cgroup: { id: cgroup.id.toString(), level: cgroup.level } } : {}) };
}

/**
 * CHECK of an attachment's class on its enforced uplink: what a converge would change there that
 * concerns this attachment (its class, queue and filters in either tree, and the classifier when
 * its pod is classified by cgroup) or the tree itself (root, reserve, hook, ifb). Another
 * attachment's drift is that attachment's CHECK's to report.
 */
export async function verifyUplinkClass(registry: Registry, record: AttachmentRecord, log: Logger, tools: SessionOptions = {}): Promise<void> {
  const target = enforcedUplinkOf(record);
  if (!target) return;
  const { changes, plan, classifierStale } = await convergeUplink(registry, target, log, tools, { dryRun: true });
  if (!plan) throw new DriftError(`uplink ${target.name}`, [`uplink ${target.name}: attachment ${record.containerId}/${record.ifname} has no class there`]);
  const { minor, cgroup } = record.uplinkClass!;
  const differences = changes.filter((change) => concerns(change, minor)).map((change) => `uplink ${describeChange(change, plan)}`);
  if (classifierStale && cgroup) differences.push(`uplink ${target.name}: the classifier on its egress is not the program of its attachments' cgroups`);
  if (differences.length) throw new DriftError(`uplink ${target.name}`, differences);
}

/** Whether a change of the uplink's tree is the attachment's (class `minor`) or the tree's own. */
function concerns(change: AttachmentChange, minor: number): boolean {
  if (change.kind !== 'tree') return true;
  const ours = (other: number | undefined) => other === minor || other === ROOT_CLASS_MINOR || other === RESERVE_MINOR;
  const tree = change.change;
  switch (tree.kind) {
    case 'class-missing':
    case 'class-changed':
    case 'class-moved':
      return ours(tree.spec.minor);
    case 'leaf-missing':
    case 'leaf-changed':
    case 'leaf-foreign':
      return ours(tree.leaf.classMinor);
    case 'filter-missing':
      return ours(tree.filter.flowidMinor);
    case 'filter-extra':
      return tree.filter.flowid !== undefined && ours(minorOf(tree.filter.flowid));
    case 'class-extra':
      return false;
    default:
      return true;
  }
}
