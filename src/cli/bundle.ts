/**
 * Everything the subcommands run, as one module: the single executable carries it as a separate
 * bundle (an asset evaluated on demand, scripts/build.sh), so the CNI path's startup snapshot holds
 * none of it — the Kubernetes client and prom-client alone are megabytes.
 */
export { agentCommand } from '../agent/command.ts';
export { runSubcommand } from './runner.ts';
export { logsWritten } from '../log.ts';
export { installCommand, uninstallCommand } from '../operator/install.ts';
export { listCommand } from '../operator/list.ts';
export { statsCommand } from '../operator/stats.ts';
export { updateCommand } from '../operator/update.ts';
