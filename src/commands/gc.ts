/**
 * GC (CNI 1.1): for this network, every registered attachment the runtime no longer lists in
 * `cni.dev/valid-attachments` loses its shaping and its record; records of vanished netns and the
 * locks of killed commands go too. Other networks' attachments are left alone.
 */
import { CniError, ErrorCode } from '../cni/errors.ts';
import type { CommandContext } from '../cni/skel.ts';
import { collectGarbage } from '../attachment/collect.ts';
import type { AttachmentRef } from '../state/record.ts';
import { commandLogger, registryFor, settingsOrDefaults } from './context.ts';

const VALID_KEYS = ['cni.dev/valid-attachments', 'cni.dev/attachments'] as const;

/** The attachments the runtime still knows; undefined when it sent no list (then none is judged stale). */
function validAttachments(config: Record<string, unknown>): AttachmentRef[] | undefined {
  const key = VALID_KEYS.find((candidate) => config[candidate] !== undefined);
  if (key === undefined) return undefined;
  const list = config[key];
  if (!Array.isArray(list)) throw new CniError(ErrorCode.invalidConfig, `${key} must be a list of {"containerID": "...", "ifname": "..."}`);
  return list.map((entry: unknown, index) => {
    const { containerID, ifname } = (entry ?? {}) as { containerID?: unknown; ifname?: unknown };
    if (typeof containerID !== 'string' || typeof ifname !== 'string') {
      throw new CniError(ErrorCode.invalidConfig, `${key}[${index}] must be {"containerID": "...", "ifname": "..."}`);
    }
    return { containerId: containerID, ifname };
  });
}

export async function gc(context: CommandContext): Promise<void> {
  const valid = validAttachments(context.config);
  const { [VALID_KEYS[0]]: _valid, [VALID_KEYS[1]]: _older, ...config } = context.config;
  const settings = await settingsOrDefaults(context, config);
  const log = commandLogger(context, settings);
  const network = typeof context.config['name'] === 'string' ? context.config['name'] : '';
  const collected = await collectGarbage(registryFor(context, settings), network, valid, log);
  log.info({ unshaped: collected.unshaped.length, dropped: collected.dropped }, 'garbage collected');
}
