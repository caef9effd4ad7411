/** The plugin's own settings from the conflist: logging, the state directory, the node's uplink. */
import { posix } from 'node:path';
import { atField, ConfigError } from './errors.ts';
import type { Settings } from './policy.ts';
import type { RawConfig } from './raw.ts';
import { parseRate } from './units.ts';

export function readSettings(config: RawConfig): Settings {
  if (config.logFile) checkNodePath('logFile', config.logFile);
  if (config.stateDir) checkNodePath('stateDir', config.stateDir);
  return {
    hostSide: config.hostSide ?? true,
    logLevel: config.logLevel ?? (config.logFile ? 'info' : 'warn'),
    ...(config.logFile ? { logFile: config.logFile } : {}),
    ...(config.stateDir ? { stateDir: config.stateDir } : {}),
    ...(config.uplink
      ? { uplink: { name: config.uplink.name, capacity: atField('uplink.capacity', () => parseRate(config.uplink!.capacity)) } }
      : {}),
  };
}

/** Kernel pseudo-filesystems are no place for tcqos's files (a log line written into /proc/sysrq-trigger...). */
function checkNodePath(field: string, path: string): void {
  if (/^\/(proc|sys|dev)(\/|$)/.test(posix.normalize(path))) throw new ConfigError(field, 'must not be under /proc, /sys or /dev');
}
