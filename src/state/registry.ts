/**
 * The node's registry of attachments: one JSON file per attachment under `<stateDir>/attachments`,
 * written atomically (temp file + rename) by whoever holds the attachment's lock. It lives under
 * /run by default: attachments do not outlive a reboot, and neither should their records.
 *
 * The state directory is checked before the registry is used (state-dir.ts). Temp files are
 * created exclusively (O_EXCL, O_NOFOLLOW, mode 0600) under unpredictable names, so nothing can be
 * planted where a writer is about to write; a killed writer's temp file is dropped by its age
 * (pids mean nothing across PID namespaces). Records are opened without following symlinks.
 *
 * A record that cannot be read never stops a command: it is reported (list, GC) and replaced
 * (ADD) or removed (DEL, GC); the kernel state itself is always found by tcqos's own names.
 */
import { lstatSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dropTempsOf, readJsonFile, TEMP_SUFFIX, writeAtomically } from './files.ts';
import { recordProblem, type AttachmentRecord, type AttachmentRef } from './record.ts';
import { checkPrivateDir, ensurePrivateDir } from './state-dir.ts';

export const DEFAULT_STATE_DIR = '/run/tcqos';
export const STATE_DIR_VARIABLE = 'TCQOS_STATE_DIR';

/** The environment variable (tests, the agent's container) wins over the config's `stateDir`. */
export function stateDirFrom(env: NodeJS.ProcessEnv, configured?: string): string {
  const fromEnv = env[STATE_DIR_VARIABLE];
  return fromEnv && fromEnv.startsWith('/') ? fromEnv : (configured ?? DEFAULT_STATE_DIR);
}

export interface RecordRead {
  readonly record?: AttachmentRecord;
  /** Why the file there is not a usable record. */
  readonly problem?: string;
}

/** Container ids and interface names never hold "@", so "<ifname>@<containerId>" cannot be ambiguous. */
function fileName(ref: AttachmentRef): string {
  return `${ref.ifname}@${ref.containerId}.json`;
}

/** A temp file older than this was left by a killed writer: a live one renames its own within milliseconds. */
export const ABANDONED_TEMP_MS = 60_000;
/** Far above any record tcqos writes (one at the filter limit measured 134 KB): anything larger is not one. */
const MAX_RECORD_BYTES = 32 * 1024 * 1024;

export class Registry {
  readonly stateDir: string;
  private readonly dir: string;
  /** Whether the records' directory exists and it and the state directory were found safe (checked once). */
  private checked = false;

  constructor(stateDir: string) {
    this.stateDir = stateDir;
    this.dir = `${stateDir}/attachments`;
  }

  read(ref: AttachmentRef): RecordRead {
    return this.readFile(fileName(ref));
  }

  get(ref: AttachmentRef): AttachmentRecord | undefined {
    return this.read(ref).record;
  }

  write(record: AttachmentRecord): void {
    if (!this.checked) {
      ensurePrivateDir(this.stateDir);
      ensurePrivateDir(this.dir);
      this.checked = true;
    }
    // One line: a record at the filter limit is 134 KB so, 164 KB indented (`jq` reads it either way).
    writeAtomically(`${this.dir}/${fileName(record)}`, `${JSON.stringify(record)}\n`);
  }

  /** Removes the temp files of this record's writers killed before their rename: for holders of the attachment's lock. */
  dropTempsOf(ref: AttachmentRef): number {
    return dropTempsOf(`${this.dir}/${fileName(ref)}`);
  }

  remove(ref: AttachmentRef): void {
    rmSync(`${this.dir}/${fileName(ref)}`, { force: true });
  }

  /** Every record, and a line for each file that is not one (those are left for GC to drop). */
  list(): { records: AttachmentRecord[]; problems: string[] } {
    const records: AttachmentRecord[] = [];
    const problems: string[] = [];
    for (const name of this.fileNames()) {
      const { record, problem } = this.readFile(name);
      if (record) records.push(record);
      else if (problem) problems.push(`${this.dir}/${name}: ${problem}`);
    }
    return { records, problems };
  }

  findByPod(namespace: string, name: string): AttachmentRecord[] {
    return this.list().records.filter((record) => record.pod?.namespace === namespace && record.pod.name === name);
  }

  /** Removes the records whose netns no longer exists (the pod is gone; only its record was left). */
  dropGone(): AttachmentRecord[] {
    const gone = this.list().records.filter((record) => !pathExists(record.netns));
    for (const record of gone) this.remove(record);
    return gone;
  }

  /** Removes the files that are not records; returns what was wrong with each. */
  dropUnreadable(): string[] {
    const dropped: string[] = [];
    for (const name of this.fileNames()) {
      const { problem } = this.readFile(name);
      if (problem === undefined) continue;
      rmSync(`${this.dir}/${name}`, { force: true });
      dropped.push(`${this.dir}/${name}: ${problem}`);
    }
    return dropped;
  }

  /** Removes the temp files of writers killed before their rename (by age); returns how many. */
  dropAbandonedTemps(now = Date.now()): number {
    let names: string[];
    try {
      this.checkOnce();
      names = readdirSync(this.dir);
    } catch {
      return 0;
    }
    let dropped = 0;
    for (const name of names) {
      if (!name.endsWith(TEMP_SUFFIX) || now - (lstatSync(`${this.dir}/${name}`, { throwIfNoEntry: false })?.mtimeMs ?? now) < ABANDONED_TEMP_MS) continue;
      rmSync(`${this.dir}/${name}`, { force: true });
      dropped++;
    }
    return dropped;
  }

  /** Refuses (UnsafeStateDirError) to trust records from a state directory others could write. */
  private checkOnce(): void {
    if (this.checked) return;
    checkPrivateDir(this.stateDir);
    checkPrivateDir(this.dir);
    // Until the records' directory exists there is nothing to trust, and a writer still has to make it.
    this.checked = pathExists(this.dir);
  }

  private fileNames(): string[] {
    this.checkOnce();
    try {
      // Temp files of a writer killed before its rename are not records.
      return readdirSync(this.dir).filter((name) => name.endsWith('.json'));
    } catch {
      return [];
    }
  }

  private readFile(name: string): RecordRead {
    this.checkOnce();
    const read = readJsonFile(`${this.dir}/${name}`, 'a record', MAX_RECORD_BYTES);
    if ('missing' in read) return {};
    if ('problem' in read) return { problem: read.problem };
    const value = read.value;
    const problem = recordProblem(value);
    if (problem) return { problem };
    const record = value as AttachmentRecord;
    if (fileName(record) !== name) return { problem: `its content names ${fileName(record)}` };
    return { record };
  }
}

/** Whether a netns path still exists (a record whose netns is gone belongs to a pod that is gone). */
export function pathExists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}
