/**
 * eBPF instructions: the few the uplink classifier needs, encoded as the kernel's uapi defines them
 * (`struct bpf_insn` in linux/bpf.h: u8 code, u8 dst_reg:4 | src_reg:4, s16 off, s32 imm, little
 * endian on the machines tcqos runs on), and an assembler resolving jump labels. Opcode values
 * checked against /usr/include/linux/bpf.h and bpf_common.h (linux-libc-dev 6.1).
 */

/** Instruction classes (bpf_common.h, bpf.h). */
const BPF_LD = 0x00;
const BPF_STX = 0x03;
const BPF_ALU = 0x04;
const BPF_JMP = 0x05;
const BPF_ALU64 = 0x07;
/** Sizes and modes of loads and stores. */
const BPF_W = 0x00;
const BPF_DW = 0x18;
const BPF_IMM = 0x00;
const BPF_MEM = 0x60;
/** Operand source: the immediate (K) or the source register (X). */
const BPF_K = 0x00;
const BPF_X = 0x08;
/** Operations. */
const BPF_MOV = 0xb0;
const BPF_JA = 0x00;
const BPF_JEQ = 0x10;
const BPF_CALL = 0x80;
const BPF_EXIT = 0x90;

/**
 * Helper function id (`enum bpf_func_id` in linux/bpf.h): u64 bpf_skb_ancestor_cgroup_id(skb, level),
 * the id of the sending socket's cgroup's ancestor at `level` (its own cgroup at its own level, which
 * is what bpf_skb_cgroup_id, id 79, returns), 0 without a full socket or above its depth.
 */
export const BPF_FUNC_skb_ancestor_cgroup_id = 83;

/** Offset of `__u32 priority` in `struct __sk_buff` (linux/bpf.h), the context a tc program gets in r1. */
export const SKB_PRIORITY = 32;

/** A direct-action program's verdict "pass the packet on" (linux/pkt_cls.h). */
export const TC_ACT_OK = 0;

/** r0 return value, r1-r5 arguments (clobbered by calls), r6-r9 callee-saved, r10 frame pointer. */
export type Reg = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10;

export interface Insn {
  readonly code: number;
  readonly dst: Reg;
  readonly src: Reg;
  /** Signed 16-bit: a memory offset, or a jump distance in instructions after the next one. */
  readonly off: number;
  /** 32 bits, stored as written (a u32 and the s32 with the same bits encode alike). */
  readonly imm: number;
}

function insn(code: number, dst: Reg, src: Reg, off: number, imm: number): Insn {
  if (!Number.isInteger(off) || off < -0x8000 || off > 0x7fff) throw new RangeError(`bpf offset ${off} outside s16`);
  if (!Number.isInteger(imm) || imm < -0x8000_0000 || imm > 0xffff_ffff) throw new RangeError(`bpf immediate ${imm} outside 32 bits`);
  return { code, dst, src, off, imm };
}

/** dst = src (64 bits). */
export function mov64Reg(dst: Reg, src: Reg): Insn {
  return insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0);
}

/** dst = imm (64 bits, imm sign-extended). */
export function mov64Imm(dst: Reg, imm: number): Insn {
  if (imm > 0x7fff_ffff) throw new RangeError(`mov64 immediate ${imm} would be sign-extended: use mov32Imm`);
  return insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm);
}

/** dst = imm as a u32 (a 32-bit move zero-extends into the upper half). */
export function mov32Imm(dst: Reg, imm: number): Insn {
  if (imm < 0) throw new RangeError(`mov32 immediate ${imm} is not a u32`);
  return insn(BPF_ALU | BPF_MOV | BPF_K, dst, 0, 0, imm);
}

/** dst = a 64-bit constant: the only instruction taking two slots. */
export function ldImm64(dst: Reg, value: bigint): [Insn, Insn] {
  if (value < 0n || value > 0xffff_ffff_ffff_ffffn) throw new RangeError(`ld_imm64 value ${value} is not a u64`);
  return [insn(BPF_LD | BPF_DW | BPF_IMM, dst, 0, 0, Number(value & 0xffff_ffffn)), insn(0, 0, 0, 0, Number(value >> 32n))];
}

/** r0 = helper(r1, ..., r5). */
export function call(helper: number): Insn {
  return insn(BPF_JMP | BPF_CALL, 0, 0, 0, helper);
}

export function exit(): Insn {
  return insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
}

/** *(u32 *)(dst + off) = src. */
export function stxW(dst: Reg, off: number, src: Reg): Insn {
  return insn(BPF_STX | BPF_MEM | BPF_W, dst, src, off, 0);
}

/** A jump to a label, resolved by `assemble`. */
export interface Jump {
  readonly jump: (off: number) => Insn;
  readonly to: string;
}

/** if dst == src goto label (64-bit compare). */
export function jeqReg(dst: Reg, src: Reg, to: string): Jump {
  return { jump: (off) => insn(BPF_JMP | BPF_JEQ | BPF_X, dst, src, off, 0), to };
}

/** goto label. */
export function ja(to: string): Jump {
  return { jump: (off) => insn(BPF_JMP | BPF_JA, 0, 0, off, 0), to };
}

/** A jump target: the position of the instruction that follows it. */
export interface Label {
  readonly label: string;
}

export function label(name: string): Label {
  return { label: name };
}

export type Item = Insn | Jump | Label;

/** Resolves labels into jump distances: the instructions in order, every slot one `Insn`. */
export function assemble(items: readonly Item[]): Insn[] {
  const positions = new Map<string, number>();
  let slot = 0;
  for (const item of items) {
    if ('label' in item) {
      if (positions.has(item.label)) throw new Error(`bpf label ${item.label} defined twice`);
      positions.set(item.label, slot);
    } else slot++;
  }
  const out: Insn[] = [];
  for (const item of items) {
    if ('label' in item) continue;
    if ('jump' in item) {
      const target = positions.get(item.to);
      if (target === undefined) throw new Error(`bpf jump to undefined label ${item.to}`);
      // The kernel counts from the instruction after the jump; only forward jumps keep the program loop-free.
      const off = target - (out.length + 1);
      if (off < 0) throw new Error(`bpf jump to ${item.to} goes backwards`);
      out.push(item.jump(off));
    } else out.push(item);
  }
  return out;
}

/** The program's bytes, as the kernel and an ELF object's program section hold them. */
export function encode(insns: readonly Insn[]): Uint8Array {
  const bytes = new Uint8Array(insns.length * 8);
  const view = new DataView(bytes.buffer);
  insns.forEach((i, n) => {
    view.setUint8(n * 8, i.code);
    view.setUint8(n * 8 + 1, (i.src << 4) | i.dst);
    view.setInt16(n * 8 + 2, i.off, true);
    view.setUint32(n * 8 + 4, i.imm >>> 0, true);
  });
  return bytes;
}
