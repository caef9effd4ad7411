/**
 * Everything the subcommands run, as one module: the single executable carries it as a separate
 * bundle (an asset evaluated on demand, scripts/build.sh), so the CNI path's startup snapshot holds
 * none of it — the Kubernetes client and prom-client alone are megabytes.
 */
import { agentCommand } from '../agent/command.ts';
import { completeCommand as makeCompleteCommand, completionCommand } from '../operator/completion.ts';
import { gcCommand } from '../operator/gc.ts';
import { installCommand, uninstallCommand } from '../operator/install.ts';
import { listCommand } from '../operator/list.ts';
import { schemaCommand } from '../operator/schema.ts';
import { statsCommand } from '../operator/stats.ts';
import { topCommand } from '../operator/top.ts';
import { updateCommand } from '../operator/update.ts';
import { validateCommand } from '../operator/validate.ts';
import type { Subcommand } from './runner.ts';

export { runSubcommand } from './runner.ts';
export { logsWritten } from '../log.ts';
export { agentCommand, completionCommand, gcCommand, installCommand, listCommand, schemaCommand, statsCommand, topCommand, uninstallCommand, updateCommand, validateCommand };

/** What shell completion knows of: every subcommand's name and flags. */
const commands = (): readonly Subcommand[] => [
  listCommand,
  statsCommand,
  topCommand,
  updateCommand,
  validateCommand,
  schemaCommand,
  gcCommand,
  installCommand,
  uninstallCommand,
  agentCommand,
  completionCommand,
];

export const completeCommand = makeCompleteCommand(commands);
