/** DEL: remove what tcqos installed; succeed when the netns, the interface or the shaping is gone. */
import type { CommandContext } from '../cni/skel.ts';
import { ConfigError } from '../config/errors.ts';
import { netnsState } from '../netns/netns-path.ts';
import { lockPath, withAttachmentLock } from '../netns/lock.ts';
import { readAttachmentState, removeAttachment, requireUsableNetns } from './attachment.ts';
import { LOCK_TIMEOUT_MS } from './add.ts';
import { commandLogger, loadConfig } from './config.ts';
import { CniError } from '../cni/errors.ts';

export async function del(context: CommandContext): Promise<void> {
  const { env } = context;
  // DEL needs no policy (tcqos finds its own state by handle and name), so a config that no longer
  // validates must not leave a pod undeletable.
  let settings;
  try {
    settings = loadConfig(context).settings;
  } catch (error) {
    if (!(error instanceof CniError || error instanceof ConfigError)) throw error;
  }
  const log = commandLogger(context, settings ?? { logLevel: 'warn' });
  if (!env.netns || netnsState(env.netns) === 'missing') {
    log.info({ netns: env.netns }, 'netns already gone: nothing to remove');
    return;
  }
  requireUsableNetns(env.netns);
  await withAttachmentLock(lockPath(env.netns, env.ifname), LOCK_TIMEOUT_MS, async () => {
    const state = await readAttachmentState(env.netns, env.ifname);
    await removeAttachment(env.netns, env.ifname, state);
    log.info({ removedIfb: state.ifb?.name }, 'shaping removed');
  });
}
