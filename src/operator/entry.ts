/**
 * Everything the operator side of the binary runs, as one module: the single executable carries it
 * as a separate bundle (an asset evaluated on demand, scripts/build.sh), so the CNI path's startup
 * snapshot holds none of it — the Kubernetes client and prom-client alone are megabytes.
 */
export { agentCommand } from '../agent/command.ts';
// The runner too: in the executable this module has its own copies of every class, so the errors
// its commands throw are recognised only by its own runner.
export { runOperatorCommand } from './cli.ts';
export { logsWritten } from '../log.ts';
export { installCommand, uninstallCommand } from './install.ts';
export { listCommand } from './list.ts';
export { statsCommand } from './stats.ts';
export { updateCommand } from './update.ts';
