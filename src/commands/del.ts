/** DEL: remove what tcqos installed and its record; succeed when the netns, the interface or the shaping is gone. */
import type { CommandContext } from '../cni/skel.ts';
import { detach, forget } from '../attachment/attach.ts';
import { withNetns, type SessionOptions } from '../netns/session.ts';
import { pathExists } from '../state/registry.ts';
import { commandLogger, hostEndFor, registryFor, settingsOrDefaults } from './context.ts';

export async function del(context: CommandContext, tools: SessionOptions): Promise<void> {
  const { env } = context;
  const settings = await settingsOrDefaults(context);
  const log = commandLogger(context, settings);
  const registry = registryFor(context, settings);
  const ref = { containerId: env.containerId, ifname: env.ifname };
  // DEL of an attachment without a readable record: the host end the chain's result names, if any
  const hostEnd = () => hostEndFor(context, settings, tools, true);
  if (!env.netns || !pathExists(env.netns)) {
    await forget(registry, ref, env.netns, log, tools, hostEnd);
    log.info({ netns: env.netns }, 'netns already gone: nothing to remove');
    return;
  }
  const removedIfb = await withNetns(env.netns, tools, (session) => detach(registry, session, ref, log, tools, hostEnd));
  log.info({ removedIfb }, 'shaping removed');
}
