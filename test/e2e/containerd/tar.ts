/**
 * A minimal ustar writer: regular files only, owned by root, fixed mtime. Enough for a one-layer
 * image and the OCI archive that carries it; nothing here has to round-trip anything else.
 */

export interface TarFile {
  /** Path inside the archive, relative, at most 100 bytes. */
  readonly name: string;
  readonly data: Buffer;
  readonly mode: number;
}

const BLOCK = 512;

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function header(file: TarFile): Buffer {
  if (Buffer.byteLength(file.name) > 100) throw new Error(`tar name too long: ${file.name}`);
  const block = Buffer.alloc(BLOCK);
  block.write(file.name, 0, 'utf8');
  block.write(octal(file.mode, 8), 100, 'ascii');
  block.write(octal(0, 8), 108, 'ascii'); // uid
  block.write(octal(0, 8), 116, 'ascii'); // gid
  block.write(octal(file.data.length, 12), 124, 'ascii');
  block.write(octal(0, 12), 136, 'ascii'); // mtime: reproducible digests
  block.write('0', 156, 'ascii'); // regular file
  block.write('ustar\0', 257, 'ascii');
  block.write('00', 263, 'ascii');
  // The checksum is taken with its own field read as eight spaces.
  block.fill(' ', 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return block;
}

export function tarArchive(files: readonly TarFile[]): Buffer {
  const parts: Buffer[] = [];
  for (const file of files) {
    parts.push(header(file), file.data, Buffer.alloc((BLOCK - (file.data.length % BLOCK)) % BLOCK));
  }
  parts.push(Buffer.alloc(2 * BLOCK)); // end of archive
  return Buffer.concat(parts);
}
