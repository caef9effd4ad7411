/**
 * `tcqos install` and `tcqos uninstall`: put the executable into a node's CNI bin dir and chain
 * tcqos into its conflists (the DaemonSet's init step), and undo both.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isSea } from 'node:sea';
import { type Subcommand, type OptionValues } from '../cli/runner.ts';
import { OperatorError, UsageError } from '../cli/errors.ts';
import { installBinary, PLUGIN_FILE, removeBinary } from './install-binary.ts';
import { applyInstallStep, BACKUP_SUFFIX, planInstall, uninstallConflists } from './install-conflists.ts';
import { removeLeftovers } from './install-files.ts';

const INSTALL_USAGE = `Usage: tcqos install --bin-dir DIR --conf-dir DIR [--network NAME]... [--source FILE] [--dry-run]

Copies this executable to DIR/${PLUGIN_FILE} (atomically, mode 0755), checks that it runs there, then
chains tcqos into the network configs of the conf dir. A binary that cannot run on this node (no
glibc >= 2.28, no libstdc++) is not put in place (a tcqos already there stays), no conflist is
touched, and the error names what is missing.

  --bin-dir DIR     the runtime's CNI plugin directory, e.g. /opt/cni/bin
  --conf-dir DIR    the runtime's CNI config directory, e.g. /etc/cni/net.d
  --network NAME    only the conflist whose "name" is NAME (repeatable); default: every *.conflist
  --source FILE     install FILE instead of the running executable
  --dry-run         say what would change, change nothing

For each conflist (one line each on stdout):
  - a reference "bandwidth" entry is replaced by tcqos, keeping its keys (ingressRate, ...);
  - otherwise {"type": "tcqos"} is appended to its plugins;
  - either way with the capabilities bandwidth and io.kubernetes.cri.pod-annotations.
  The original is kept beside it as NAME.conflist${BACKUP_SUFFIX} for uninstall. A conflist that
  already has tcqos is not rewritten: running install again changes nothing. One that cannot be
  parsed, or that tcqos cannot join (unsupported cniVersion, a bandwidth entry tcqos refuses), is
  left byte for byte and named. Single-plugin *.conf and *.json files cannot chain a plugin: they
  are named and left as is.

Exit status: 0 when the binary runs and tcqos is in at least one conflist (and in every --network
named); 1 otherwise (stderr says why); 2 for bad usage.
`;

const UNINSTALL_USAGE = `Usage: tcqos uninstall --bin-dir DIR --conf-dir DIR

Undoes install: every conflist install rewrote is put back byte for byte from its
NAME.conflist${BACKUP_SUFFIX} backup, unless it was edited since (then it is named and left as
is), and DIR/${PLUGIN_FILE} is removed. The executable stays while any conflist still chains
tcqos, so no pod's network breaks; the exit status is then 1.

  --bin-dir DIR     the runtime's CNI plugin directory, e.g. /opt/cni/bin
  --conf-dir DIR    the runtime's CNI config directory, e.g. /etc/cni/net.d
`;

const DIRECTORY_OPTIONS = {
  'bin-dir': { type: 'string' },
  'conf-dir': { type: 'string' },
} as const;

export const installCommand: Subcommand = {
  name: 'install',
  summary: 'copy the binary into a CNI bin dir and chain tcqos into conflists',
  usage: INSTALL_USAGE,
  options: {
    ...DIRECTORY_OPTIONS,
    network: { type: 'string', multiple: true },
    source: { type: 'string' },
    'dry-run': { type: 'boolean' },
  },
  run: async (values, _positionals, io) => {
    const { binDir, confDir } = await directories(values);
    const source = sourceOf(values);
    const networks = (values['network'] as string[] | undefined) ?? [];
    const dryRun = values['dry-run'] === true;
    const plan = await planInstall(confDir, networks);
    const report = (path: string, line: string) => io.writeStdout(`${path}: ${line}\n`);
    const refuse = (message: string) => {
      for (const step of plan.steps.filter((candidate) => !candidate.chained)) report(step.path, step.line);
      return new OperatorError(`${message}; nothing changed`);
    };
    if (plan.missing.length > 0) {
      throw refuse(`no conflist in ${confDir} can take tcqos for network ${plan.missing.map((name) => JSON.stringify(name)).join(', ')}`);
    }
    if (!plan.steps.some((step) => step.chained)) {
      throw refuse(`no conflist in ${confDir} can take tcqos (is the network plugin installed yet?)`);
    }
    if (!dryRun) await Promise.all([removeLeftovers(binDir), removeLeftovers(confDir)]);
    // The binary first: a conflist must never name a plugin that is not there or cannot run.
    const binary = await installBinary(source, binDir, dryRun);
    report(binary.path, `${binary.status} (${binary.version})`);
    for (const step of plan.steps) {
      if (!dryRun) await applyInstallStep(step);
      report(step.path, dryRun && step.write ? `${step.line} (dry run: not written)` : step.line);
    }
    return 0;
  },
};

export const uninstallCommand: Subcommand = {
  name: 'uninstall',
  summary: 'undo what install changed',
  usage: UNINSTALL_USAGE,
  options: DIRECTORY_OPTIONS,
  run: async (values, _positionals, io) => {
    const { binDir, confDir } = await directories(values);
    const steps = await uninstallConflists(confDir);
    for (const step of steps) io.writeStdout(`${step.path}: ${step.line}\n`);
    const binary = join(binDir, PLUGIN_FILE);
    const chained = steps.filter((step) => step.stillChained).map((step) => step.path);
    if (chained.length > 0) {
      throw new OperatorError(`kept ${binary}: tcqos is still chained in ${chained.join(', ')} (remove it there, then run uninstall again)`);
    }
    io.writeStdout(`${binary}: ${(await removeBinary(binDir)) ? 'removed' : 'not there'}\n`);
    return 0;
  },
};

async function directories(values: OptionValues): Promise<{ binDir: string; confDir: string }> {
  const binDir = await existingDirectory(values, 'bin-dir', "the runtime's CNI plugin directory, e.g. /opt/cni/bin");
  const confDir = await existingDirectory(values, 'conf-dir', "the runtime's CNI config directory, e.g. /etc/cni/net.d");
  return { binDir, confDir };
}

async function existingDirectory(values: OptionValues, flag: string, what: string): Promise<string> {
  const value = values[flag];
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${flag} DIR is required (${what})`);
  const found = await stat(value).catch(() => undefined);
  if (!found?.isDirectory()) throw new OperatorError(`--${flag} ${value}: no such directory`);
  return value;
}

/** Inside the single executable, the running file is the one to install; under plain Node it is not. */
function sourceOf(values: OptionValues): string {
  const source = values['source'];
  if (typeof source === 'string' && source !== '') return source;
  if (isSea()) return process.execPath;
  throw new UsageError(`not running as the tcqos executable (${process.execPath}): name the file to install with --source FILE`);
}
