/**
 * The executable's part of install/uninstall: copy it into the CNI bin dir and prove it runs there
 * before any conflist names it. tcqos is Node in one file, dynamically linked (glibc >= 2.28,
 * libstdc++, libgcc_s): on a node without those, a chain naming it would fail every pod's ADD.
 */
import { createReadStream } from 'node:fs';
import { stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { execa } from 'execa';
import { OperatorError } from '../cli/errors.ts';
import { NotExecutableError, readElf } from './install-elf.ts';
import { renameSynced, sha256, temporaryPath, writeSynced } from './install-files.ts';

/** The file name runtimes look up for `"type": "tcqos"`. */
export const PLUGIN_FILE = 'tcqos';
const VERSION_TIMEOUT_MS = 30_000;
const NEEDS = 'tcqos is not static: it needs glibc >= 2.28, libstdc++ and libgcc_s';

export interface BinaryOutcome {
  readonly path: string;
  readonly status: 'installed' | 'already installed' | 'would be installed';
  /** What the binary printed for `version`, e.g. "tcqos 0.1.0". */
  readonly version: string;
}

export async function installBinary(source: string, binDir: string, dryRun: boolean): Promise<BinaryOutcome> {
  const target = join(binDir, PLUGIN_FILE);
  const interpreter = await checkSource(source);
  if (await sameContent(source, target)) return { path: target, status: 'already installed', version: await versionOf(target, target, interpreter) };
  if (dryRun) return { path: target, status: 'would be installed', version: await versionOf(source, source, interpreter) };
  // The copy runs under its temporary name first: a binary that cannot run here never replaces
  // one that can, and the conflists are only touched once this succeeded.
  const temporary = temporaryPath(target);
  await writeSynced(temporary, { mode: 0o755, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }, async (handle) => {
    for await (const chunk of createReadStream(source)) await handle.write(chunk as Buffer);
  });
  try {
    const version = await versionOf(temporary, target, interpreter);
    await renameSynced(temporary, target);
    return { path: target, status: 'installed', version };
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
}

/** Removes the executable; false when there was none. */
export async function removeBinary(binDir: string): Promise<boolean> {
  try {
    await unlink(join(binDir, PLUGIN_FILE));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** Refuses what cannot be tcqos before anything is copied; returns the loader it names. */
async function checkSource(source: string): Promise<string | undefined> {
  let facts;
  try {
    if (!(await stat(source)).isFile()) throw new NotExecutableError('not a regular file');
    facts = await readElf(source);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (error instanceof NotExecutableError || code) {
      throw new OperatorError(`${source} cannot be installed: ${code === 'ENOENT' ? 'no such file' : (error as Error).message}; nothing changed`);
    }
    throw error;
  }
  return facts.interpreter;
}

async function sameContent(a: string, b: string): Promise<boolean> {
  const [statA, statB] = await Promise.all([stat(a), stat(b).catch(() => undefined)]);
  if (!statB || statA.size !== statB.size) return false;
  const [hashA, hashB] = await Promise.all([sha256(a), sha256(b)]);
  return hashA === hashB;
}

/**
 * Runs `FILE version` as a runtime would run the plugin: no shell, an empty environment (the
 * binary honours NODE_OPTIONS, and runtimes may pass no PATH at all).
 */
async function versionOf(file: string, shownAs: string, interpreter: string | undefined): Promise<string> {
  const result = await execa(file, ['version'], { reject: false, env: {}, extendEnv: false, stdin: 'ignore', timeout: VERSION_TIMEOUT_MS });
  const printed = String(result.stdout).trim();
  if (result.exitCode === 0 && /^tcqos \S+$/.test(printed)) return printed;
  throw new OperatorError(`${shownAs} cannot run on this node: ${whyNot(result, printed, file, interpreter)}; nothing changed`);
}

interface Failed {
  readonly exitCode?: number | undefined;
  readonly code?: string | undefined;
  readonly timedOut: boolean;
  readonly stderr: unknown;
}

/** The loader's own words, turned into what is missing. */
function whyNot(result: Failed, printed: string, file: string, interpreter: string | undefined): string {
  if (result.code === 'ENOENT') return `its dynamic loader ${interpreter ?? '(none named)'} is missing (${NEEDS}; a musl-based system has no glibc)`;
  if (result.code === 'EACCES') return `${dirname(file)} does not allow running programs (mounted noexec?)`;
  if (result.timedOut) return `"tcqos version" did not finish within ${VERSION_TIMEOUT_MS / 1000} s`;
  const stderr = String(result.stderr);
  const missingLibrary = /error while loading shared libraries: ([^:]+): cannot open shared object file/.exec(stderr);
  if (missingLibrary) return `${missingLibrary[1]} is missing (${NEEDS})`;
  const missingVersion = /([^\s:]+): version [`']([^'`]+)' not found/.exec(stderr);
  if (missingVersion) return `${missingVersion[2]} not found in ${basename(missingVersion[1]!)}: the node's libraries are too old (${NEEDS})`;
  if (result.exitCode === 0) return `it ran but is not tcqos ("version" printed ${JSON.stringify(printed.split('\n')[0] ?? '')})`;
  const firstLine = stderr.trim().split('\n')[0] ?? '';
  return `"version" exited with ${result.exitCode ?? result.code ?? 'an error'}${firstLine ? `: ${firstLine}` : ''}`;
}
