/** What the operator subcommands share: the state dir flag, the registry, a logger to stderr, staleness. */
import { createLogger, type Logger } from '../log.ts';
import type { AttachmentRecord } from '../state/record.ts';
import { pathExists, Registry, stateDirFrom } from '../state/registry.ts';
import type { CliIo, OptionValues } from '../cli/runner.ts';

export const STATE_DIR_OPTION = {
  'state-dir': { type: 'string' },
} as const;

export const STATE_DIR_HELP = `  --state-dir DIR   the registry's directory (default: $TCQOS_STATE_DIR, else /run/tcqos)`;

export function registryFrom(values: OptionValues, io: CliIo): Registry {
  const flag = values['state-dir'];
  return new Registry(typeof flag === 'string' ? flag : stateDirFrom(io.env));
}

export function operatorLogger(command: string): Logger {
  return createLogger({ logLevel: 'warn' }, { command });
}

/** An optional string flag, or undefined. */
export function stringFlag(values: OptionValues, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

/** An attachment whose netns is gone: nothing left to shape, only its record (and a host end's ifb). */
export function isStale(record: AttachmentRecord): boolean {
  return !pathExists(record.netns);
}
