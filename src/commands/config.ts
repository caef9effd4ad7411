/** The command-level view of configuration: CNI errors instead of config errors, and a logger. */
import { CniError, ErrorCode } from '../cni/errors.ts';
import type { CommandContext } from '../cni/skel.ts';
import { ConfigError } from '../config/errors.ts';
import { normalizeConfig, type NormalizedConfig } from '../config/normalize.ts';
import { createLogger, type Logger } from '../log.ts';

export async function loadConfig(context: CommandContext): Promise<NormalizedConfig> {
  try {
    return await normalizeConfig(context.config);
  } catch (error) {
    if (error instanceof ConfigError) throw new CniError(ErrorCode.invalidConfig, `invalid tcqos configuration: ${error.message}`);
    throw error;
  }
}

export function commandLogger(context: Pick<CommandContext, 'env'>, settings: NormalizedConfig['settings']): Logger {
  const { env } = context;
  return createLogger(settings, {
    command: env.command,
    containerId: env.containerId,
    ifname: env.ifname,
    ...(env.args['K8S_POD_NAMESPACE'] ? { pod: `${env.args['K8S_POD_NAMESPACE']}/${env.args['K8S_POD_NAME'] ?? ''}` } : {}),
  });
}

/** Warnings at warn; expected adjustments (containerd's burst clamped on every annotated pod) at info. */
export function logConfigNotes(logger: Logger, config: Pick<NormalizedConfig, 'warnings' | 'notices'>): void {
  for (const warning of config.warnings) logger.warn({}, warning);
  for (const notice of config.notices) logger.info({}, notice);
}
