/**
 * What the installer needs to know about an executable before it runs it: that it is an ELF for
 * this machine, and which dynamic loader it names. When that loader is missing (a musl-based node
 * without glibc), exec fails with a bare ENOENT on a file that exists; naming the loader is the
 * only useful message.
 */
import { open, type FileHandle } from 'node:fs/promises';

/** The file cannot be an executable for this node. */
export class NotExecutableError extends Error {}

export interface ElfFacts {
  /** PT_INTERP: the dynamic loader the kernel starts (absent for a static executable). */
  readonly interpreter?: string;
}

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
const MACHINES: Readonly<Record<string, number>> = { x64: 62, arm64: 183 };
const PT_INTERP = 3;
const HEADER_BYTES = 64;
const PROGRAM_HEADER_BYTES = 56;

export async function readElf(path: string): Promise<ElfFacts> {
  const file = await open(path, 'r');
  try {
    const header = await readAt(file, 0, HEADER_BYTES);
    if (header.length < HEADER_BYTES || !header.subarray(0, 4).equals(ELF_MAGIC)) throw new NotExecutableError('not an ELF executable');
    // ELFCLASS64, little-endian: the only kind Node is built as for Linux.
    if (header[4] !== 2 || header[5] !== 1) throw new NotExecutableError('not a 64-bit little-endian ELF executable');
    const machine = header.readUInt16LE(0x12);
    const expected = MACHINES[process.arch];
    if (expected !== undefined && machine !== expected) {
      throw new NotExecutableError(`built for another architecture (ELF machine ${machine}; this node is ${process.arch})`);
    }
    const tableOffset = Number(header.readBigUInt64LE(0x20));
    const entrySize = header.readUInt16LE(0x36);
    const count = header.readUInt16LE(0x38);
    if (entrySize < PROGRAM_HEADER_BYTES) throw new NotExecutableError('a damaged ELF file (program header table)');
    const table = await readAt(file, tableOffset, entrySize * count);
    for (let at = 0; at + PROGRAM_HEADER_BYTES <= table.length; at += entrySize) {
      if (table.readUInt32LE(at) !== PT_INTERP) continue;
      const offset = Number(table.readBigUInt64LE(at + 0x08));
      const size = Number(table.readBigUInt64LE(at + 0x20));
      const interpreter = (await readAt(file, offset, Math.min(size, 4096))).toString('latin1').replace(/\0.*$/s, '');
      return { interpreter };
    }
    return {};
  } finally {
    await file.close();
  }
}

async function readAt(file: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await file.read(buffer, 0, length, position);
  return buffer.subarray(0, bytesRead);
}
