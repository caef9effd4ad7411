/** The plugin's own settings from the conflist: logging, the state directory, the node's uplink, the cgroup root. */
import { posix } from 'node:path';
import { atField, ConfigError } from './errors.ts';
import type { Settings, Uplink } from './policy.ts';
import type { RawConfig, RawUplink } from './raw.ts';
import { formatRate, LIMITS, parseRate } from './units.ts';

/** The reserve when none is set: traffic that is no attachment's (kubelet's, the node's own) keeps 5% of the link. */
const DEFAULT_RESERVE_SHARE = 0.05;
/**
 * The most one attachment may be guaranteed when the admin sets no maxGuaranteePerAttachment: a
 * quarter of what the uplink can guarantee. Guarantees are admitted first come, first served, so
 * without a bound one pod's annotation could claim the whole uplink and every later pod would be
 * refused; with a quarter, no pod holds more than that and filling the uplink takes at least four,
 * while guarantees of the usual size (a few percent of a node's link) pass unchanged.
 */
const DEFAULT_MAX_GUARANTEE_SHARE = 0.25;

export function readSettings(config: RawConfig): Settings {
  if (config.logFile) checkNodePath('logFile', config.logFile);
  if (config.stateDir) checkNodePath('stateDir', config.stateDir);
  if (config.cgroupRoot) checkCgroupRoot(config.cgroupRoot);
  return {
    hostSide: config.hostSide ?? true,
    logLevel: config.logLevel ?? (config.logFile ? 'info' : 'warn'),
    ...(config.logFile ? { logFile: config.logFile } : {}),
    ...(config.stateDir ? { stateDir: config.stateDir } : {}),
    ...(config.uplink ? { uplink: readUplink(config.uplink) } : {}),
    ...(config.cgroupRoot ? { cgroupRoot: config.cgroupRoot } : {}),
  };
}

/** The only way to an Uplink: the reserve below the capacity, the per-attachment maximum within what is left. */
export function readUplink(raw: RawUplink): Uplink {
  const capacity = atField('uplink.capacity', () => parseRate(raw.capacity));
  const reserve =
    raw.reserve === undefined
      ? Math.max(LIMITS.minRateBitsPerSecond, Math.ceil(capacity * DEFAULT_RESERVE_SHARE))
      : atField('uplink.reserve', () => parseRate(raw.reserve!));
  if (reserve >= capacity) {
    const which = raw.reserve === undefined ? ' (the default, 5% and at least 8kbit)' : '';
    throw new ConfigError('uplink.reserve', `${formatRate(reserve)}${which} must be below uplink.capacity ${formatRate(capacity)}`);
  }
  const left = capacity - reserve;
  const maxGuarantee =
    raw.maxGuaranteePerAttachment === undefined
      ? Math.min(left, Math.max(LIMITS.minRateBitsPerSecond, Math.floor(left * DEFAULT_MAX_GUARANTEE_SHARE)))
      : atField('uplink.maxGuaranteePerAttachment', () => parseRate(raw.maxGuaranteePerAttachment!));
  if (maxGuarantee > left) {
    throw new ConfigError(
      'uplink.maxGuaranteePerAttachment',
      `${formatRate(maxGuarantee)} is above what the uplink can guarantee (capacity ${formatRate(capacity)} - reserve ${formatRate(reserve)} = ${formatRate(left)})`,
    );
  }
  return { name: raw.name, capacity, reserve, maxGuaranteePerAttachment: maxGuarantee, enforce: raw.enforce ?? false } as Uplink;
}

/** Kernel pseudo-filesystems are no place for tcqos's files (a log line written into /proc/sysrq-trigger...). */
function checkNodePath(field: string, path: string): void {
  if (/^\/(proc|sys|dev)(\/|$)/.test(posix.normalize(path))) throw new ConfigError(field, 'must not be under /proc, /sys or /dev');
}

/** The schema keeps it to plain names; "." and ".." would step out of the cgroup hierarchy. */
function checkCgroupRoot(path: string): void {
  if (path.split('/').some((part) => part === '.' || part === '..')) throw new ConfigError('cgroupRoot', 'must not hold "." or ".." components');
}
