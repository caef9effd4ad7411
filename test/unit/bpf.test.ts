/**
 * The uplink classifier's pure parts: instruction encoding (against the uapi's values), the
 * program's meaning (run by a small interpreter of the instructions it uses), its ELF object, its
 * determinism, and where kubelet puts a pod's cgroup.
 */
import fc from 'fast-check';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cgroup2MountPoints, cgroup2Root, findPodCgroup, isPodUid, podCgroupCandidates } from '../../src/bpf/cgroup.ts';
import { CLASSIFIER_NAME, CLASSIFIER_SECTION, classifierObject, kernelTags, MAX_RULES, uplinkClassifier, type CgroupRule } from '../../src/bpf/classifier.ts';
import { assemble, call, encode, exit, ja, jeqReg, label, ldImm64, mov32Imm, mov64Imm, mov64Reg, stxW, type Insn } from '../../src/bpf/insn.ts';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

describe('eBPF instruction encoding (struct bpf_insn, little endian)', () => {
  it('encodes each instruction as the kernel defines it', () => {
    // Reference bytes as llvm-objdump shows clang's output for the same instructions.
    expect(hex(encode([mov64Reg(6, 1)]))).toBe('bf16000000000000'); // r6 = r1
    expect(hex(encode([mov64Imm(2, 4)]))).toBe('b702000004000000'); // r2 = 4
    expect(hex(encode([mov32Imm(2, 0x7c05_0010)]))).toBe('b40200001000057c'); // w2 = 0x7c050010
    expect(hex(encode([mov32Imm(2, 0xffff_ffff)]))).toBe('b4020000ffffffff');
    expect(hex(encode(ldImm64(1, 0x1_0000_0005n)))).toBe('18010000050000000000000001000000'); // r1 = ... ll
    expect(hex(encode([call(83)]))).toBe('8500000053000000'); // call bpf_skb_ancestor_cgroup_id
    expect(hex(encode([stxW(6, 32, 2)]))).toBe('6326200000000000'); // *(u32 *)(r6 + 32) = r2
    expect(hex(encode([exit()]))).toBe('9500000000000000');
  });

  it('resolves labels into distances counted from the next instruction, forward only', () => {
    const insns = assemble([jeqReg(0, 1, 'there'), mov64Imm(0, 1), ...ldImm64(2, 7n), label('there'), ja('end'), label('end'), exit()]);
    expect(hex(encode(insns.slice(0, 1)))).toBe('1d10030000000000'); // if r0 == r1 goto +3
    expect(hex(encode(insns.slice(4, 5)))).toBe('0500000000000000'); // goto +0
    expect(() => assemble([label('back'), exit(), ja('back')])).toThrow(/backwards/);
    expect(() => assemble([ja('nowhere')])).toThrow(/undefined label/);
    expect(() => assemble([label('twice'), label('twice')])).toThrow(/twice/);
  });

  it('refuses values its fields cannot hold', () => {
    expect(() => mov64Imm(0, 0x8000_0000)).toThrow(/sign-extended/);
    expect(() => mov32Imm(0, -1)).toThrow(/u32/);
    expect(() => ldImm64(0, -1n)).toThrow(/u64/);
    expect(() => ldImm64(0, 1n << 64n)).toThrow(/u64/);
    expect(() => stxW(6, 0x8000, 2)).toThrow(/s16/);
  });
});

/**
 * Runs a classifier as the kernel would, for the instructions it uses: `ancestors[level]` is the
 * sending socket's ancestor cgroup id at that level (0 when there is none). Returns the priority it
 * writes and its verdict.
 */
function execute(insns: readonly Insn[], ancestors: readonly bigint[]): { priority: number | undefined; verdict: bigint } {
  const regs: bigint[] = Array.from({ length: 11 }, () => 0n);
  const CTX = 1n << 40n;
  regs[1] = CTX;
  let priority: number | undefined;
  for (let pc = 0, steps = 0; steps < 100_000; steps++) {
    const i = insns[pc]!;
    pc++;
    switch (i.code) {
      case 0xbf: regs[i.dst] = regs[i.src]!; break;
      case 0xb7: regs[i.dst] = BigInt.asUintN(64, BigInt(i.imm | 0)); break;
      case 0xb4: regs[i.dst] = BigInt(i.imm >>> 0); break;
      case 0x18: regs[i.dst] = BigInt(i.imm >>> 0) | (BigInt(insns[pc]!.imm >>> 0) << 32n); pc++; break;
      case 0x85:
        expect(i.imm).toBe(83);
        expect(regs[1]).toBe(CTX);
        regs[0] = ancestors[Number(regs[2])] ?? 0n;
        for (const r of [1, 2, 3, 4, 5]) regs[r] = 0xdeadn; // clobbered by the call
        break;
      case 0x1d: if (regs[i.dst] === regs[i.src]) pc += i.off; break;
      case 0x05: pc += i.off; break;
      case 0x63:
        expect(regs[i.dst]).toBe(CTX);
        expect(i.off).toBe(32);
        priority = Number(regs[i.src]! & 0xffff_ffffn);
        break;
      case 0x95: return { priority, verdict: regs[0]! };
      default: throw new Error(`unexpected opcode ${i.code.toString(16)}`);
    }
  }
  throw new Error('no exit');
}

const rule = (level: number, cgroupId: bigint, classid: number): CgroupRule => ({ level, cgroupId, classid });

describe('uplinkClassifier', () => {
  it('with no rules, resets the priority and passes the packet', () => {
    expect(execute(uplinkClassifier([]), [1n, 5n, 9n])).toEqual({ priority: 0, verdict: 0n });
  });

  it('gives a packet the class of the rule naming its sender\'s ancestor at the rule\'s level, else priority 0', () => {
    const rules = [rule(3, 100n, 0x7c06_0010), rule(3, 200n, 0x7c06_0011), rule(4, 300n, 0x7c06_0012), rule(2, 0xffff_ffff_0000_0001n, 0x7c06_0013)];
    const program = uplinkClassifier(rules);
    expect(execute(program, [1n, 10n, 20n, 100n, 999n]).priority).toBe(0x7c06_0010);
    expect(execute(program, [1n, 10n, 20n, 200n]).priority).toBe(0x7c06_0011);
    expect(execute(program, [1n, 10n, 20n, 21n, 300n]).priority).toBe(0x7c06_0012);
    expect(execute(program, [1n, 10n, 0xffff_ffff_0000_0001n]).priority).toBe(0x7c06_0013);
    // An id at another level than the rule's is not the rule's cgroup.
    expect(execute(program, [1n, 10n, 100n, 300n]).priority).toBe(0);
    // No socket: every ancestor id is 0.
    expect(execute(program, []).priority).toBe(0);
    expect(execute(program, []).verdict).toBe(0n);
  });

  it('calls the helper once per distinct level', () => {
    const calls = (rules: CgroupRule[]) => uplinkClassifier(rules).filter((i) => i.code === 0x85).length;
    expect(calls([])).toBe(0);
    expect(calls([rule(3, 1n, 0x10010), rule(3, 2n, 0x10011), rule(3, 3n, 0x10012)])).toBe(1);
    expect(calls([rule(3, 1n, 0x10010), rule(4, 2n, 0x10011), rule(5, 3n, 0x10012)])).toBe(3);
  });

  it('agrees with a plain lookup for any rules and any sender', () => {
    const ruleArb = fc.record({ level: fc.integer({ min: 1, max: 6 }), cgroupId: fc.bigInt({ min: 1n, max: 40n }), classid: fc.integer({ min: 1, max: 0xffff }).map((m) => 0x7c06_0000 | m) });
    fc.assert(
      fc.property(fc.uniqueArray(ruleArb, { selector: (r) => `${r.level}/${r.cgroupId}`, maxLength: 12 }), fc.array(fc.bigInt({ min: 0n, max: 40n }), { maxLength: 8 }), (rules, ancestors) => {
        const expected = rules.filter((r) => ancestors[r.level] === r.cgroupId).map((r) => r.classid);
        const { priority, verdict } = execute(uplinkClassifier(rules), ancestors);
        expect(verdict).toBe(0n);
        // Two rules can match one sender (a cgroup and its ancestor): either class is a rule's.
        if (expected.length === 0) expect(priority).toBe(0);
        else expect(expected).toContain(priority);
      }),
    );
  });

  it('gives the same bytes for the same rules in any order, and other bytes for other rules', () => {
    const rules = [rule(3, 100n, 0x10010), rule(4, 300n, 0x10012), rule(3, 200n, 0x10011)];
    const object = classifierObject(rules);
    expect(hex(classifierObject([...rules].reverse()))).toBe(hex(object));
    expect(hex(classifierObject([...rules, rules[0]!]))).toBe(hex(object));
    expect(kernelTags([...rules].reverse())).toEqual(kernelTags(rules));
    expect(hex(classifierObject([rule(3, 100n, 0x10013), ...rules.slice(1)]))).not.toBe(hex(object));
    expect(kernelTags(rules).sha256).toMatch(/^[0-9a-f]{16}$/);
    expect(kernelTags(rules).sha1).toMatch(/^[0-9a-f]{16}$/);
    expect(kernelTags(rules).sha256).not.toBe(kernelTags([]).sha256);
  });

  it('refuses rules it cannot express', () => {
    expect(() => uplinkClassifier([rule(0, 1n, 0x10010)])).toThrow(/level/);
    expect(() => uplinkClassifier([rule(65, 1n, 0x10010)])).toThrow(/level/);
    expect(() => uplinkClassifier([rule(3, 0n, 0x10010)])).toThrow(/cgroup id/);
    expect(() => uplinkClassifier([rule(3, 1n << 64n, 0x10010)])).toThrow(/cgroup id/);
    expect(() => uplinkClassifier([rule(3, 1n, 0x10000)])).toThrow(/classid/);
    expect(() => uplinkClassifier([rule(3, 1n, 0x1_0000_0001)])).toThrow(/classid/);
    expect(() => uplinkClassifier([rule(3, 1n, 0x10010), rule(3, 1n, 0x10011)])).toThrow(/two classes/);
    const many = Array.from({ length: MAX_RULES + 1 }, (_, n) => rule(3, BigInt(n + 1), 0x10010));
    expect(() => uplinkClassifier(many)).toThrow(/at most/);
  });

  it('keeps every jump in range at the rule limit', () => {
    const most = Array.from({ length: MAX_RULES }, (_, n) => rule(1 + (n % 8), BigInt(n + 1), 0x10000 | (1 + (n % 0xfff))));
    const program = uplinkClassifier(most);
    expect(execute(program, [0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n, BigInt(MAX_RULES)]).priority).toBe(0x10000 | (1 + ((MAX_RULES - 1) % 0xfff)));
  });
});

/** Reads what the object holds: the header's fields, and the sections by name. */
function readElf(bytes: Uint8Array) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shoff = Number(view.getBigUint64(40, true));
  const shnum = view.getUint16(60, true);
  const shstrndx = view.getUint16(62, true);
  const header = (n: number) => {
    const at = shoff + n * 64;
    return {
      name: view.getUint32(at, true), type: view.getUint32(at + 4, true), flags: Number(view.getBigUint64(at + 8, true)),
      offset: Number(view.getBigUint64(at + 24, true)), size: Number(view.getBigUint64(at + 32, true)),
      link: view.getUint32(at + 40, true), info: view.getUint32(at + 44, true), align: Number(view.getBigUint64(at + 48, true)),
      entsize: Number(view.getBigUint64(at + 56, true)),
    };
  };
  const data = (n: number) => bytes.subarray(header(n).offset, header(n).offset + header(n).size);
  const cString = (table: Uint8Array, at: number) => Buffer.from(table.subarray(at, table.indexOf(0, at))).toString();
  const sections = Array.from({ length: shnum }, (_, n) => ({ ...header(n), index: n, title: cString(data(shstrndx), header(n).name), data: data(n) }));
  return { view, sections, cString };
}

describe('classifierObject (ELF64 relocatable, EM_BPF)', () => {
  const rules = [rule(3, 100n, 0x10010), rule(4, 300n, 0x10012)];
  const object = classifierObject(rules);
  const { view, sections, cString } = readElf(object);
  const named = (title: string) => sections.find((s) => s.title === title)!;

  it('has the header of a little-endian 64-bit BPF relocatable object', () => {
    expect(hex(object.subarray(0, 16))).toBe('7f454c46020101000000000000000000');
    expect(view.getUint16(16, true)).toBe(1); // ET_REL
    expect(view.getUint16(18, true)).toBe(247); // EM_BPF
    expect(view.getUint16(52, true)).toBe(64);
    expect(view.getUint16(58, true)).toBe(64);
    expect(sections.map((s) => s.title)).toEqual(['', CLASSIFIER_SECTION, 'license', '.symtab', '.strtab', '.shstrtab']);
  });

  it('holds the program in an executable section, the license, and a global function symbol for the program', () => {
    const program = named(CLASSIFIER_SECTION);
    expect(program.type).toBe(1);
    expect(program.flags).toBe(0x6); // SHF_ALLOC | SHF_EXECINSTR
    expect(program.offset % 8).toBe(0);
    expect(hex(program.data)).toBe(hex(encode(uplinkClassifier(rules))));
    expect(Buffer.from(named('license').data).toString()).toBe('GPL\0');
    const symtab = named('.symtab');
    expect(symtab.type).toBe(2);
    expect(symtab.entsize).toBe(24);
    expect(sections[symtab.link]!.title).toBe('.strtab');
    expect(symtab.info).toBe(1); // first global symbol
    const symbol = new DataView(symtab.data.buffer, symtab.data.byteOffset + 24, 24);
    expect(cString(named('.strtab').data, symbol.getUint32(0, true))).toBe(CLASSIFIER_NAME);
    expect(symbol.getUint8(4)).toBe(0x12); // STB_GLOBAL << 4 | STT_FUNC
    expect(symbol.getUint16(6, true)).toBe(program.index);
    expect(Number(symbol.getBigUint64(16, true))).toBe(program.size);
    expect(CLASSIFIER_NAME.length).toBeLessThanOrEqual(15); // BPF_OBJ_NAME_LEN - 1: the kernel keeps it whole
  });
});

describe('pod cgroups', () => {
  const uid = '0b7f3c2e-9a41-4d6b-8f1e-2c3d4e5f6a7b';

  it('reads cgroup2 mount points from mountinfo: hybrid, cgroup2-only, escaped, none', () => {
    const hybrid = [
      '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
      '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
      '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
    ].join('\n');
    expect(cgroup2MountPoints(hybrid)).toEqual(['/sys/fs/cgroup/unified']);
    expect(cgroup2MountPoints('30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate')).toEqual(['/sys/fs/cgroup']);
    expect(cgroup2MountPoints('30 23 0:26 / /mnt/my\\040cgroups rw - cgroup2 none rw')).toEqual(['/mnt/my cgroups']);
    expect(cgroup2MountPoints(hybrid.split('\n').slice(0, 2).join('\n'))).toEqual([]);
  });

  it('lists kubelet\'s places for a pod: both drivers, three QoS classes, under the cgroup root', () => {
    const u = uid.replaceAll('-', '_');
    expect(podCgroupCandidates(uid)).toEqual([
      `kubepods/pod${uid}`,
      `kubepods.slice/kubepods-pod${u}.slice`,
      `kubepods/burstable/pod${uid}`,
      `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${u}.slice`,
      `kubepods/besteffort/pod${uid}`,
      `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${u}.slice`,
    ]);
    expect(podCgroupCandidates(uid, '/kube-root/')[2]).toBe(`kube-root/kubepods/burstable/pod${uid}`);
    expect(podCgroupCandidates(uid, '/kube-root')[3]).toBe(
      `kube_root.slice/kube_root-kubepods.slice/kube_root-kubepods-burstable.slice/kube_root-kubepods-burstable-pod${u}.slice`,
    );
  });

  it('takes only a Kubernetes UID into a path, and only plain names as the cgroup root', () => {
    expect(isPodUid(uid)).toBe(true);
    expect(isPodUid('6d9a4f3c0e1b2a3948576a6b7c8d9e0f')).toBe(true); // a static pod's (kubelet's hash)
    for (const bad of ['', '../../etc', uid.toUpperCase(), `${uid}0`, uid.slice(1), `${uid.slice(0, 35)}/`, `${uid.slice(0, 8)}_${uid.slice(9)}`]) {
      expect(isPodUid(bad), bad).toBe(false);
      expect(() => podCgroupCandidates(bad), bad).toThrow(/not a Kubernetes UID/);
    }
    for (const bad of ['/a/../b', '/./x', '/a b', '/a\nb']) expect(() => podCgroupCandidates(uid, bad), bad).toThrow(/cgroup root/);
  });

  describe('findPodCgroup on directory trees standing for the hierarchy', () => {
    const base = mkdtempSync(join(tmpdir(), 'tcqos-cgroup-'));
    /** A cgroup directory: every one has cgroup.procs, all but the hierarchy's root have cgroup.type. */
    const cgroupDir = (path: string, root = false) => {
      mkdirSync(path, { recursive: true });
      writeFileSync(join(path, 'cgroup.procs'), '');
      if (!root) writeFileSync(join(path, 'cgroup.type'), 'domain\n');
      return path;
    };
    const line = (point: string) => `41 31 0:38 / ${point} rw,relatime - cgroup2 cgroup2 rw`;
    const hierarchy = cgroupDir(join(base, 'hierarchy'), true);
    const subtree = cgroupDir(join(base, 'subtree'));
    afterAll(() => rmSync(base, { recursive: true, force: true }));

    it('finds the pod\'s directory below the hierarchy\'s root: its inode as the id, its depth as the level', () => {
      const path = cgroupDir(join(hierarchy, 'kubepods.slice', 'kubepods-besteffort.slice', `kubepods-besteffort-pod${uid.replaceAll('-', '_')}.slice`));
      // The subtree's mount (a cgroup namespace's root, a bind mount) is passed over for the real root.
      const mountinfo = `${line(subtree)}\n${line(hierarchy)}`;
      expect(cgroup2Root(mountinfo)).toBe(hierarchy);
      expect(findPodCgroup(uid, { mountinfo })).toEqual({ path, id: statSync(path, { bigint: true }).ino, level: 3 });
      expect(findPodCgroup('11111111-2222-3333-4444-555555555555', { mountinfo })).toBeUndefined();
      expect(findPodCgroup(uid, { mountinfo: '' })).toBeUndefined();
    });

    it('refuses a hierarchy seen only as a subtree, and a pod found in two places', () => {
      expect(() => findPodCgroup(uid, { mountinfo: line(subtree) })).toThrow(/only as a subtree/);
      cgroupDir(join(hierarchy, 'kubepods', `pod${uid}`));
      expect(() => findPodCgroup(uid, { mountinfo: line(hierarchy) })).toThrow(/more than one cgroup/);
    });
  });
});
