/** DEL: remove what tcqos installed; succeed when the netns, the interface or the shaping is gone. */
import { CniError } from '../cni/errors.ts';
import type { CommandContext } from '../cni/skel.ts';
import { lockPath, removeStaleLock, withAttachmentLock } from '../netns/lock.ts';
import { netnsState } from '../netns/netns-path.ts';
import { ifbName } from '../plan/tree.ts';
import { readAttachmentState, removeIfbWhile, removeQdiscs, requireUsableNetns } from './attachment.ts';
import { LOCK_TIMEOUT_MS } from './add.ts';
import { commandLogger, loadConfig } from './config.ts';

export async function del(context: CommandContext): Promise<void> {
  const { env } = context;
  // DEL needs no policy (tcqos finds its own state by handle, filter mark and name), so a config
  // that no longer validates must not leave a pod undeletable.
  const settings = await loadConfig(context).then(
    (config) => config.settings,
    (error: unknown) => {
      if (error instanceof CniError) return { logLevel: 'warn' };
      throw error;
    },
  );
  const log = commandLogger(context, settings);
  if (!env.netns || netnsState(env.netns) === 'missing') {
    // A runtime before CNI 1.1 never calls GC: the lock an interrupted ADD left goes now.
    removeStaleLock(lockPath(env.netns, env.ifname));
    log.info({ netns: env.netns }, 'netns already gone: nothing to remove');
    return;
  }
  requireUsableNetns(env.netns);
  await withAttachmentLock(lockPath(env.netns, env.ifname), LOCK_TIMEOUT_MS, async () => {
    // The ifb is tcqos's by its name, and deleting a link is the slow part of DEL: it is started
    // first, and the qdiscs are read and removed while the kernel works on it.
    const ifb = ifbName(env.ifname);
    const removedIfb = await removeIfbWhile(env.netns, ifb, () => removeQdiscs(env.netns, readAttachmentState(env.netns, env.ifname)));
    log.info({ removedIfb: removedIfb ? ifb : undefined }, 'shaping removed');
  });
}
