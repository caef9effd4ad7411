/** CHECK: read the installed tc state back and name every difference from what the config asks. */
import { CniError, ErrorCode } from '../cni/errors.ts';
import { requireSandboxInterface } from '../cni/prev-result.ts';
import type { CommandContext } from '../cni/skel.ts';
import { readClasses, readFilters, readLinks } from '../netns/observe.ts';
import { findDrift, type ObservedTree } from '../plan/drift.ts';
import { planAttachment } from '../plan/tree.ts';
import { readAttachmentState, requireUsableNetns } from './attachment.ts';
import { commandLogger, loadConfig, logConfigNotes } from './config.ts';

export async function check(context: CommandContext): Promise<void> {
  const { env } = context;
  const config = await loadConfig(context);
  const { policy } = config;
  logConfigNotes(commandLogger(context, config.settings), config);
  requireSandboxInterface(context.config['prevResult'], env.ifname);
  requireUsableNetns(env.netns);
  const state = readAttachmentState(env.netns, env.ifname);
  const links = readLinks(env.netns);
  const iface = links.find((link) => link.name === env.ifname);
  if (!iface) throw new CniError(ErrorCode.interfaceNotFound, `interface ${env.ifname} not found in ${env.netns}`);
  const plan = planAttachment(policy, env.ifname, iface.mtu);
  const tree = (dev: string, present: boolean, root: ObservedTree['qdisc']): ObservedTree => {
    const leaves = state.qdiscs.filter((q) => q.dev === dev && q.parent !== undefined);
    if (!present || !root) return { qdisc: root, leaves, classes: [], filters: [] };
    return { qdisc: root, leaves, classes: readClasses(env.netns, dev), filters: readFilters(env.netns, dev, 'root') };
  };
  const egress = tree(env.ifname, true, state.root);
  const ingress = tree(plan.ifb, state.ifbExists, state.ifbRoot);
  const ifb = links.find((link) => link.name === plan.ifb && link.kind === 'ifb');
  const drift = findDrift(plan, { iface, ifb, egress, ingressQdisc: state.ingress, redirects: state.ingressFilters, ingress });
  if (drift.length) {
    throw new CniError(
      ErrorCode.stateDrift,
      `tcqos shaping on ${env.ifname} differs from its configuration: ${drift[0]}${drift.length > 1 ? ` (and ${drift.length - 1} more)` : ''}`,
      drift.join('\n'),
    );
  }
}
