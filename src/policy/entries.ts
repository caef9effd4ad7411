/**
 * The BandwidthPolicies that select each pod of the node, as the agent resolved them, for the
 * plugin: it has no API access and the runtime hands it annotations, not labels, so the agent
 * (which knows a pod from the moment it is scheduled to the node, before its sandbox exists)
 * keeps one entry per pod under `<stateDir>/policies`, and ADD reads the pod's entry (matched on
 * K8S_POD_NAMESPACE, K8S_POD_NAME and K8S_POD_UID) to shape the pod by its policy from its first
 * packet. An entry lists every policy that selects the pod, in precedence order: which one applies
 * also depends on the attachment's network (resolve.ts), known only at ADD.
 *
 * Entries are written atomically (temp file + rename, O_EXCL|O_NOFOLLOW 0600) in a private
 * directory (state-dir.ts), read without following symlinks, and checked: an entry that is not one
 * is ignored (the agent applies the policy right after the ADD instead).
 */
import { readdirSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { DIRECTIONS } from '../config/policy.ts';
import { readJsonFile, writeAtomically } from '../state/files.ts';
import { checkPrivateDir, ensurePrivateDir } from '../state/state-dir.ts';
import type { Candidate } from './resolve.ts';

export interface PodRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string;
}

export interface PolicyEntry extends PodRef {
  readonly version: 1;
  /** The policies that select the pod, in precedence order (resolve.ts). */
  readonly policies: readonly Candidate[];
}

/** The pod's entry, or why the file there is not one; neither when there is none. */
export interface EntryRead {
  readonly entry?: PolicyEntry;
  readonly problem?: string;
}

/** Namespaces are DNS labels, pod names DNS subdomains: nothing else may become a file name. */
const NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
/** Above this a file is not an entry the agent wrote (a pod selected by a few policies of 64 classes each). */
const MAX_ENTRY_BYTES = 4 * 1024 * 1024;

export class PolicyEntries {
  readonly dir: string;
  private readonly stateDir: string;
  private checked = false;

  constructor(stateDir: string) {
    this.stateDir = stateDir;
    this.dir = `${stateDir}/policies`;
  }

  write(entry: PolicyEntry): void {
    if (!this.checked) {
      ensurePrivateDir(this.stateDir);
      ensurePrivateDir(this.dir);
      this.checked = true;
    }
    writeAtomically(`${this.dir}/${fileName(entry)}`, `${JSON.stringify(entry)}\n`);
  }

  remove(pod: PodRef): void {
    if (isPodName(pod)) rmSync(`${this.dir}/${fileName(pod)}`, { force: true });
  }

  /** The pods that have an entry ("namespace/name"), read from the entries themselves. */
  pods(): PodRef[] {
    let names: string[];
    try {
      checkPrivateDir(this.dir);
      names = readdirSync(this.dir).filter((name) => name.endsWith('.json'));
    } catch {
      return [];
    }
    return names.flatMap((name) => {
      const read = this.readFile(name);
      return read.entry ? [read.entry] : [];
    });
  }

  /** The pod's entry; none when the agent wrote none; a problem when the file there is not a usable entry. */
  read(pod: PodRef): EntryRead {
    if (!isPodName(pod)) return { problem: `${JSON.stringify(`${pod.namespace}/${pod.name}`)} is not a pod's namespace and name` };
    try {
      checkPrivateDir(this.stateDir);
      checkPrivateDir(this.dir);
    } catch (error) {
      return { problem: (error as Error).message };
    }
    const read = this.readFile(fileName(pod));
    if (!read.entry) return read;
    const { entry } = read;
    if (entry.namespace !== pod.namespace || entry.name !== pod.name) return { problem: `it names the pod ${entry.namespace}/${entry.name}` };
    // an entry for an earlier pod of the same name is not this pod's
    if (pod.uid && entry.uid && entry.uid !== pod.uid) return {};
    return read;
  }

  private readFile(name: string): EntryRead {
    const path = `${this.dir}/${name}`;
    const read = readJsonFile(path, 'an entry', MAX_ENTRY_BYTES);
    if ('missing' in read) return {};
    if ('problem' in read) return { problem: `${path}: ${read.problem}` };
    const value = read.value;
    const problem = entryProblem(value);
    return problem ? { problem: `${path}: ${problem}` } : { entry: value as PolicyEntry };
  }
}

function isPodName(pod: PodRef): boolean {
  return NAME.test(pod.namespace) && pod.namespace.length <= 63 && NAME.test(pod.name);
}

/** "<namespace>_<name>.json" ("_" is in neither); a name too long for one file name is hashed. */
function fileName(pod: PodRef): string {
  const plain = `${pod.namespace}_${pod.name}.json`;
  return plain.length <= 255 ? plain : `${pod.namespace}_${createHash('sha256').update(pod.name).digest('hex')}.json`;
}

/** What makes a value not an entry (the trees themselves are checked by ADD as it derives the policy). */
export function entryProblem(value: unknown): string | undefined {
  if (!isObject(value)) return 'not a JSON object';
  if (value['version'] !== 1) return `unknown entry version ${JSON.stringify(value['version'])}`;
  for (const key of ['namespace', 'name']) if (typeof value[key] !== 'string') return `"${key}" is missing or not a string`;
  if (value['uid'] !== undefined && typeof value['uid'] !== 'string') return '"uid" is not a string';
  const policies = value['policies'];
  if (!Array.isArray(policies)) return '"policies" is missing or not a list';
  for (const [index, policy] of policies.entries()) {
    const at = `policies[${index}]`;
    if (!isObject(policy) || typeof policy['key'] !== 'string' || !Number.isInteger(policy['priority'])) return `${at} is not a policy (key, priority, trees)`;
    if (policy['network'] !== undefined && typeof policy['network'] !== 'string') return `${at}.network is not a string`;
    const trees = policy['trees'];
    if (!isObject(trees) || Object.keys(trees).some((key) => !(DIRECTIONS as readonly string[]).includes(key) || !isObject(trees[key]))) return `${at}.trees is not {egress, ingress}`;
  }
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
