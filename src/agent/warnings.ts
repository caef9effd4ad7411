/**
 * Node's own process warnings (a dependency's deprecated API, say) as log lines: left to Node,
 * they are printed as plain text, and the agent's stderr would stop being JSON lines.
 */
import type { Logger } from '../log.ts';

export function logProcessWarnings(log: Logger): void {
  process.removeAllListeners('warning');
  process.on('warning', (warning) => log.warn({ warning: warning.name, code: (warning as NodeJS.ErrnoException).code }, warning.message));
}
