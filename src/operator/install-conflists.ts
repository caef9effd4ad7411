/**
 * The conf dir's part of install/uninstall: which network configs there are, what chaining tcqos
 * does to each, and how uninstall puts them back.
 *
 * Undo information is a backup beside each conflist install rewrote, NAME.conflist.tcqos-orig,
 * holding the bytes it had before. Not a journal file: a backup is restored by one atomic rename,
 * byte for byte; an administrator sees and diffs it with the conflist it belongs to; and it cannot
 * drift from a separate record. Runtimes never load it (libcni reads *.conf, *.conflist, *.json).
 * Uninstall restores a backup only while the conflist is still exactly what install made of it:
 * a conflist edited since then is left alone, not overwritten with an old copy.
 */
import { readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { chainsTcqos, chainTcqos, ConflistParseError, parseConflist, type Conflist } from './conflist.ts';
import { renameSynced, writeFileAtomic, type FileOwnership } from './install-files.ts';

export const BACKUP_SUFFIX = '.tcqos-orig';

interface NetworkFile {
  readonly path: string;
  /** A .conf or .json file holds one plugin: nothing can be chained after it. */
  readonly list: boolean;
  readonly symlink: boolean;
}

/** What install does (or did) to one network config. */
export interface InstallStep {
  readonly path: string;
  readonly line: string;
  /** tcqos is in the chain once the step is applied. */
  readonly chained: boolean;
  readonly network?: string;
  readonly write?: { readonly text: string; readonly original: Buffer; readonly ownership: FileOwnership };
}

export interface InstallPlan {
  readonly steps: readonly InstallStep[];
  /** --network names that no conflist got tcqos for (absent, or its conflist was refused). */
  readonly missing: readonly string[];
}

/** The network configs in `confDir`, in the order libcni reads them (by name). */
async function networkFiles(confDir: string): Promise<NetworkFile[]> {
  const entries = await readdir(confDir, { withFileTypes: true });
  return entries
    .filter((entry) => /\.(conflist|conf|json)$/.test(entry.name) && (entry.isFile() || entry.isSymbolicLink()))
    .map((entry) => ({ path: join(confDir, entry.name), list: entry.name.endsWith('.conflist'), symlink: entry.isSymbolicLink() }))
    .sort((a, b) => (a.path < b.path ? -1 : 1));
}

type Parsed = { readonly conflist: Conflist; readonly original: Buffer; readonly text: string } | { readonly problem: string };

async function readConflist(path: string): Promise<Parsed> {
  const original = await readFile(path);
  const text = original.toString('utf8');
  try {
    return { conflist: parseConflist(text), original, text };
  } catch (error) {
    if (error instanceof ConflistParseError) return { problem: error.message };
    throw error;
  }
}

/** Reads every network config and decides what install does to it; writes nothing. */
export async function planInstall(confDir: string, networks: readonly string[]): Promise<InstallPlan> {
  const steps: InstallStep[] = [];
  for (const file of await networkFiles(confDir)) steps.push(await planFile(file, networks));
  const missing = networks.filter((network) => !steps.some((step) => step.chained && step.network === network));
  return { steps, missing };
}

async function planFile(file: NetworkFile, networks: readonly string[]): Promise<InstallStep> {
  const { path } = file;
  if (file.symlink) return { path, chained: false, line: 'a symbolic link, left as is (chain tcqos into the file it points to)' };
  if (!file.list) return { path, chained: false, line: 'a single-plugin config cannot chain tcqos, left as is (turn it into a .conflist to shape its pods)' };
  const read = await readConflist(path);
  if ('problem' in read) return { path, chained: false, line: `unparseable (${read.problem}), left as is` };
  const { conflist, original, text } = read;
  const network = conflist.name;
  const named = network !== undefined ? { network } : {};
  if (networks.length > 0 && (network === undefined || !networks.includes(network))) {
    return { path, ...named, chained: chainsTcqos(conflist), line: `network ${JSON.stringify(network ?? null)} not selected, left as is` };
  }
  const outcome = await chainTcqos(text, conflist);
  switch (outcome.kind) {
    case 'already-chained':
      return { path, ...named, chained: true, line: 'already chained' };
    case 'refused':
      return { path, ...named, chained: false, line: `left as is: ${outcome.reason}` };
    case 'added':
    case 'replaced-bandwidth': {
      const line = outcome.kind === 'added' ? 'added tcqos' : `replaced bandwidth by tcqos (kept ${outcome.keptKeys.join(', ') || 'no keys'})`;
      const { mode, uid, gid } = await stat(path);
      return { path, ...named, chained: true, line, write: { text: outcome.text, original, ownership: { mode: mode & 0o7777, uid, gid } } };
    }
  }
}

/** Writes the backup, then the chained conflist, each atomically. */
export async function applyInstallStep(step: InstallStep): Promise<void> {
  if (!step.write) return;
  // A backup already there belongs to an older install whose chain has since been removed (a
  // network plugin rewrote its conflist): what is there now is the original to come back to.
  await writeFileAtomic(step.path + BACKUP_SUFFIX, step.write.original, step.write.ownership);
  await writeFileAtomic(step.path, step.write.text, step.write.ownership);
}

export interface UninstallStep {
  readonly path: string;
  readonly line: string;
  /** tcqos is still in this conflist afterwards: its executable must stay. */
  readonly stillChained: boolean;
}

/** Puts back every conflist install rewrote and is unchanged since; removes spent backups. */
export async function uninstallConflists(confDir: string): Promise<UninstallStep[]> {
  const steps: UninstallStep[] = [];
  const lists = (await networkFiles(confDir)).filter((file) => file.list && !file.symlink);
  for (const file of lists) steps.push(await restoreFile(file.path));
  const backups = (await readdir(confDir)).filter((name) => name.endsWith(`.conflist${BACKUP_SUFFIX}`)).sort();
  for (const backup of backups) {
    const path = join(confDir, backup.slice(0, -BACKUP_SUFFIX.length));
    if (lists.some((file) => file.path === path)) continue;
    await unlink(join(confDir, backup));
    steps.push({ path, stillChained: false, line: `gone; its backup ${backup} removed` });
  }
  return steps;
}

async function restoreFile(path: string): Promise<UninstallStep> {
  const backup = path + BACKUP_SUFFIX;
  const current = await readConflist(path);
  const saved = await readConflist(backup).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if ('problem' in current) return { path, stillChained: false, line: `unparseable (${current.problem}), left as is` };
  const chained = chainsTcqos(current.conflist);
  if (!saved) {
    return chained
      ? { path, stillChained: true, line: 'tcqos chained, but not by install (no backup), left as is' }
      : { path, stillChained: false, line: 'not chained, nothing to undo' };
  }
  if (!chained) {
    await unlink(backup);
    return { path, stillChained: false, line: `tcqos no longer chained, left as is; backup ${backup} removed` };
  }
  const installed = 'problem' in saved ? undefined : await chainTcqos(saved.text, saved.conflist);
  if (installed && 'text' in installed && installed.text === current.text) {
    await renameSynced(backup, path);
    return { path, stillChained: false, line: 'restored' };
  }
  return { path, stillChained: true, line: `changed since install, left as is (the original is in ${backup})` };
}
