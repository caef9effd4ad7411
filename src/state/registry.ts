/**
 * The node's registry of attachments: one JSON file per attachment under `<stateDir>/attachments`,
 * written atomically (temp file + rename) by whoever holds the attachment's lock. It lives under
 * /run by default: attachments do not outlive a reboot, and neither should their records.
 *
 * A record that cannot be read never stops a command: it is reported (list, GC) and replaced
 * (ADD) or removed (DEL, GC); the kernel state itself is always found by tcqos's own names.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { recordProblem, type AttachmentRecord, type AttachmentRef } from './record.ts';

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

export class Registry {
  readonly stateDir: string;
  private readonly dir: string;

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
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const target = `${this.dir}/${fileName(record)}`;
    const temp = `${target}.${process.pid}.tmp`;
    writeFileSync(temp, `${JSON.stringify(record, null, 1)}\n`, { mode: 0o600 });
    renameSync(temp, target);
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

  /** Removes the temp files of writers killed before their rename; returns how many. */
  dropAbandonedTemps(): number {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return 0;
    }
    let dropped = 0;
    for (const name of names) {
      // A writer renames its temp file within milliseconds: one a minute old was left by a killed writer.
      if (!name.endsWith('.tmp') || Date.now() - (statSync(`${this.dir}/${name}`, { throwIfNoEntry: false })?.mtimeMs ?? Date.now()) < 60_000) continue;
      rmSync(`${this.dir}/${name}`, { force: true });
      dropped++;
    }
    return dropped;
  }

  private fileNames(): string[] {
    try {
      // Temp files of a writer killed before its rename are not records.
      return readdirSync(this.dir).filter((name) => name.endsWith('.json'));
    } catch {
      return [];
    }
  }

  private readFile(name: string): RecordRead {
    let text: string;
    try {
      text = readFileSync(`${this.dir}/${name}`, 'utf8');
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'ENOENT' ? {} : { problem: (error as Error).message };
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return { problem: 'not valid JSON (truncated or overwritten)' };
    }
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
