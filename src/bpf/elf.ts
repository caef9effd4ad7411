/**
 * A minimal ELF64 relocatable object holding one eBPF program, as tc (iproute2 6.1, through libbpf
 * 1.1) loads it with `tc filter add ... bpf da obj FILE sec SECTION`: the program's section, a
 * "license" section, and a symbol table naming the program with a global function symbol (libbpf
 * finds programs by their symbols and refuses an object without a symbol table). No maps, no BTF,
 * no relocations: nothing in it depends on time or place, so the same program gives the same bytes.
 */

const EHDR_SIZE = 64;
const SHDR_SIZE = 64;
const SYM_SIZE = 24;

const ET_REL = 1;
const EM_BPF = 247;
const SHT_PROGBITS = 1;
const SHT_SYMTAB = 2;
const SHT_STRTAB = 3;
const SHF_WRITE = 0x1;
const SHF_ALLOC = 0x2;
const SHF_EXECINSTR = 0x4;
const STB_GLOBAL = 1;
const STT_FUNC = 2;

export interface BpfProgramObject {
  /** The section tc is told to load (`sec NAME`). */
  readonly section: string;
  /** The program's symbol: libbpf's program name (the kernel keeps its first 15 characters). */
  readonly name: string;
  /** Encoded instructions (a multiple of 8 bytes). */
  readonly code: Uint8Array;
  /** The kernel refuses GPL-only helpers to programs under other licenses. */
  readonly license: string;
}

/** Section and symbol names go into string tables as NUL-terminated C strings. */
function cName(name: string): string {
  if (!/^[A-Za-z_.][A-Za-z0-9_.]{0,62}$/.test(name)) throw new Error(`bad ELF name ${JSON.stringify(name)}`);
  return name;
}

/** A string table: offsets of each name, and its bytes (starting with the empty name at 0). */
function stringTable(names: readonly string[]): { offsets: Map<string, number>; bytes: Uint8Array } {
  const offsets = new Map<string, number>();
  let text = '\0';
  for (const name of names) {
    if (offsets.has(name)) continue;
    offsets.set(name, text.length);
    text += `${cName(name)}\0`;
  }
  return { offsets, bytes: new TextEncoder().encode(text) };
}

interface Section {
  readonly name: string;
  readonly type: number;
  readonly flags: number;
  readonly data: Uint8Array;
  readonly align: number;
  readonly link?: number;
  readonly info?: number;
  readonly entsize?: number;
}

function align(offset: number, to: number): number {
  return Math.ceil(offset / to) * to;
}

export function bpfObject(object: BpfProgramObject): Uint8Array {
  if (object.code.length === 0 || object.code.length % 8 !== 0) throw new Error('a bpf program is a non-empty sequence of 8-byte instructions');
  if (object.license.includes('\0')) throw new Error('bad license string');
  // Section indexes, in the order of `sections` below (0 is the null section).
  const PROGRAM = 1;
  const STRTAB = 4;
  const SHSTRTAB = 5;

  const strtab = stringTable([object.name]);
  // The null symbol, then the program's global function symbol (no locals: sh_info, the first global, is 1).
  const symtab = new Uint8Array(2 * SYM_SIZE);
  const sym = new DataView(symtab.buffer);
  sym.setUint32(SYM_SIZE, strtab.offsets.get(object.name)!, true);
  sym.setUint8(SYM_SIZE + 4, (STB_GLOBAL << 4) | STT_FUNC);
  sym.setUint16(SYM_SIZE + 6, PROGRAM, true);
  sym.setBigUint64(SYM_SIZE + 8, 0n, true);
  sym.setBigUint64(SYM_SIZE + 16, BigInt(object.code.length), true);

  const sections: Section[] = [
    { name: object.section, type: SHT_PROGBITS, flags: SHF_ALLOC | SHF_EXECINSTR, data: object.code, align: 8 },
    { name: 'license', type: SHT_PROGBITS, flags: SHF_ALLOC | SHF_WRITE, data: new TextEncoder().encode(`${object.license}\0`), align: 1 },
    // sh_info: index of the first non-local symbol.
    { name: '.symtab', type: SHT_SYMTAB, flags: 0, data: symtab, align: 8, link: STRTAB, info: 1, entsize: SYM_SIZE },
    { name: '.strtab', type: SHT_STRTAB, flags: 0, data: strtab.bytes, align: 1 },
  ];
  const shstrtab = stringTable([...sections.map((s) => s.name), '.shstrtab']);
  sections.push({ name: '.shstrtab', type: SHT_STRTAB, flags: 0, data: shstrtab.bytes, align: 1 });

  // Layout: header, section contents in order, then the section header table.
  const offsets: number[] = [];
  let end = EHDR_SIZE;
  for (const section of sections) {
    end = align(end, section.align);
    offsets.push(end);
    end += section.data.length;
  }
  const shoff = align(end, 8);
  const total = shoff + (sections.length + 1) * SHDR_SIZE;
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);

  bytes.set([0x7f, 0x45, 0x4c, 0x46, 2 /* ELFCLASS64 */, 1 /* ELFDATA2LSB */, 1 /* EV_CURRENT */, 0 /* ELFOSABI_NONE */]);
  view.setUint16(16, ET_REL, true);
  view.setUint16(18, EM_BPF, true);
  view.setUint32(20, 1, true);
  view.setBigUint64(40, BigInt(shoff), true);
  view.setUint16(52, EHDR_SIZE, true);
  view.setUint16(58, SHDR_SIZE, true);
  view.setUint16(60, sections.length + 1, true);
  view.setUint16(62, SHSTRTAB, true);

  sections.forEach((section, n) => {
    bytes.set(section.data, offsets[n]!);
    const at = shoff + (n + 1) * SHDR_SIZE;
    view.setUint32(at, shstrtab.offsets.get(section.name)!, true);
    view.setUint32(at + 4, section.type, true);
    view.setBigUint64(at + 8, BigInt(section.flags), true);
    view.setBigUint64(at + 24, BigInt(offsets[n]!), true);
    view.setBigUint64(at + 32, BigInt(section.data.length), true);
    view.setUint32(at + 40, section.link ?? 0, true);
    view.setUint32(at + 44, section.info ?? 0, true);
    view.setBigUint64(at + 48, BigInt(section.align), true);
    view.setBigUint64(at + 56, BigInt(section.entsize ?? 0), true);
  });
  return bytes;
}
