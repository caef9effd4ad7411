/**
 * The sandbox image, made here because nothing can be pulled: pause.c compiled statically, as the
 * only file of a one-layer OCI image, written as an OCI archive that `ctr images import` reads.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { must } from '../../helpers/run.ts';
import { tarArchive, type TarFile } from './tar.ts';

const PAUSE_SOURCE = fileURLToPath(new URL('pause.c', import.meta.url));

export const PAUSE_IMAGE = 'tqctr.local/pause:1';
/** The OCI name of this machine's architecture (containerd imports only the host's platform). */
const ARCHITECTURE = process.arch === 'x64' ? 'amd64' : process.arch;

interface Blob {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
}

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Records `data` as a blob of the archive and returns its descriptor. */
function blob(blobs: TarFile[], mediaType: string, data: Buffer): Blob {
  const digest = sha256(data);
  blobs.push({ name: `blobs/sha256/${digest.slice('sha256:'.length)}`, data, mode: 0o644 });
  return { mediaType, digest, size: data.length };
}

function json(value: object): Buffer {
  return Buffer.from(JSON.stringify(value));
}

/** Compiles the pause binary into `dir` and writes the image archive there; returns the archive's path. */
export async function buildPauseArchive(dir: string): Promise<string> {
  const binary = join(dir, 'pause');
  await must('gcc', ['-static', '-O2', '-s', '-o', binary, PAUSE_SOURCE], { timeoutMs: 60_000 });

  const layer = tarArchive([{ name: 'pause', data: readFileSync(binary), mode: 0o755 }]);
  const blobs: TarFile[] = [];
  const layerBlob = blob(blobs, 'application/vnd.oci.image.layer.v1.tar', layer);
  const config = blob(
    blobs,
    'application/vnd.oci.image.config.v1+json',
    json({
      architecture: ARCHITECTURE,
      os: 'linux',
      config: { Entrypoint: ['/pause'] },
      rootfs: { type: 'layers', diff_ids: [layerBlob.digest] }, // uncompressed: the diff id is the blob's digest
    }),
  );
  const manifest = blob(
    blobs,
    'application/vnd.oci.image.manifest.v1+json',
    json({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [layerBlob] }),
  );
  const index = {
    schemaVersion: 2,
    manifests: [{ ...manifest, platform: { architecture: ARCHITECTURE, os: 'linux' }, annotations: { 'io.containerd.image.name': PAUSE_IMAGE } }],
  };
  const archive = join(dir, 'pause-image.tar');
  writeFileSync(
    archive,
    tarArchive([
      { name: 'oci-layout', data: json({ imageLayoutVersion: '1.0.0' }), mode: 0o644 },
      { name: 'index.json', data: json(index), mode: 0o644 },
      ...blobs,
    ]),
  );
  return archive;
}
