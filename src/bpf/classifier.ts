/**
 * The uplink classifier: a direct-action program for the clsact egress of a macvlan master that
 * picks each packet's HTB class from the cgroup v2 of the socket that sent it, which a pod cannot
 * forge (unlike its MAC or addresses, or its own SO_PRIORITY).
 *
 * For each rule, `bpf_skb_ancestor_cgroup_id(skb, level)` (one call per distinct level) is compared
 * with the rule's cgroup id; a match writes `skb->priority = classid`, which HTB takes as the class
 * before running any filter. Everything else gets `skb->priority = 0`, so a priority a sender set
 * (SO_PRIORITY naming a class, or the HTB's own handle and its unshaped direct queue) never picks
 * the class on the uplink. The verdict is always TC_ACT_OK.
 */
import { createHash } from 'node:crypto';
import { bpfObject } from './elf.ts';
import {
  assemble, BPF_FUNC_skb_ancestor_cgroup_id, call, encode, exit, ja, jeqReg, label, ldImm64, mov32Imm, mov64Imm, mov64Reg,
  SKB_PRIORITY, stxW, TC_ACT_OK, type Insn, type Item,
} from './insn.ts';

export interface CgroupRule {
  /** Depth of the cgroup below the cgroup2 root (the root is 0). */
  readonly level: number;
  /** The cgroup's id: its directory's inode number in the cgroup2 filesystem. */
  readonly cgroupId: bigint;
  /** HTB class id, major << 16 | minor. */
  readonly classid: number;
}

/** The section tc loads (`sec tcqos`) and the program's name (kernel: 15 characters at most). */
export const CLASSIFIER_SECTION = 'tcqos';
export const CLASSIFIER_NAME = 'tcqos_uplink';

/** Far above any node's pod count; keeps every jump within the instruction set's 16-bit offsets. */
export const MAX_RULES = 4096;
/** Deeper than any kubelet layout. */
const MAX_LEVEL = 64;

function checkedRules(rules: readonly CgroupRule[]): CgroupRule[] {
  if (rules.length > MAX_RULES) throw new RangeError(`${rules.length} classifier rules, at most ${MAX_RULES}`);
  const byCgroup = new Map<string, CgroupRule>();
  for (const rule of rules) {
    if (!Number.isInteger(rule.level) || rule.level < 1 || rule.level > MAX_LEVEL) {
      throw new RangeError(`cgroup level ${rule.level}: expected 1..${MAX_LEVEL} (the root cgroup holds everything)`);
    }
    if (typeof rule.cgroupId !== 'bigint' || rule.cgroupId < 1n || rule.cgroupId > 0xffff_ffff_ffff_ffffn) {
      throw new RangeError(`cgroup id ${String(rule.cgroupId)}: expected a u64 above 0`);
    }
    if (!Number.isInteger(rule.classid) || rule.classid < 1 || rule.classid > 0xffff_ffff || (rule.classid & 0xffff) === 0) {
      throw new RangeError(`classid ${rule.classid}: expected major << 16 | minor with a minor above 0`);
    }
    const key = `${rule.level}/${rule.cgroupId}`;
    const earlier = byCgroup.get(key);
    if (earlier && earlier.classid !== rule.classid) {
      throw new Error(`cgroup ${rule.cgroupId} at level ${rule.level} given two classes (${earlier.classid}, ${rule.classid})`);
    }
    byCgroup.set(key, rule);
  }
  // One order for one set of rules: the same rules always give the same program.
  return [...byCgroup.values()].sort((a, b) => a.level - b.level || (a.cgroupId < b.cgroupId ? -1 : a.cgroupId > b.cgroupId ? 1 : 0));
}

/** The program's instructions. */
export function uplinkClassifier(rules: readonly CgroupRule[]): Insn[] {
  const sorted = checkedRules(rules);
  const items: Item[] = [mov64Reg(6, 1)]; // r6 = skb: r1-r5 do not survive a helper call
  const levels = [...new Set(sorted.map((rule) => rule.level))];
  for (const level of levels) {
    items.push(mov64Reg(1, 6), mov64Imm(2, level), call(BPF_FUNC_skb_ancestor_cgroup_id));
    // r0 = the id of the sender's ancestor at this level, 0 without a (full) socket or above its depth.
    sorted.forEach((rule, n) => {
      if (rule.level === level) items.push(...ldImm64(1, rule.cgroupId), jeqReg(0, 1, `match${n}`));
    });
  }
  items.push(mov32Imm(2, 0), ja('store'));
  sorted.forEach((rule, n) => items.push(label(`match${n}`), mov32Imm(2, rule.classid), ja('store')));
  items.push(label('store'), stxW(6, SKB_PRIORITY, 2), mov64Imm(0, TC_ACT_OK), exit());
  return assemble(items);
}

/** The ELF object tc loads: `tc filter add dev M egress pref N bpf da obj FILE sec tcqos`. */
export function classifierObject(rules: readonly CgroupRule[]): Uint8Array {
  return bpfObject({ section: CLASSIFIER_SECTION, name: CLASSIFIER_NAME, code: encode(uplinkClassifier(rules)), license: 'GPL' });
}

/**
 * The tag the kernel gives this program (`tc -j filter show` prints it as `prog.tag`): the first 8
 * bytes of a digest of its instructions, SHA-256 from Linux 6.18 on, SHA-1 before (measured here:
 * 6.18 reports the SHA-256 one). A loaded program whose tag is one of these two is this program, so
 * "is the uplink's classifier current" is answered from the kernel, with no memo to go stale.
 */
export function kernelTags(rules: readonly CgroupRule[]): { readonly sha256: string; readonly sha1: string } {
  const code = encode(uplinkClassifier(rules));
  const tag = (algorithm: string) => createHash(algorithm).update(code).digest('hex').slice(0, 16);
  return { sha256: tag('sha256'), sha1: tag('sha1') };
}
