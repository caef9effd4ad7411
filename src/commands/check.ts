/** CHECK: read the installed tc state back and name every difference from what the config asks. */
import { CniError, ErrorCode } from '../cni/errors.ts';
import { requireSandboxInterface } from '../cni/prev-result.ts';
import type { CommandContext } from '../cni/skel.ts';
import { readClasses, readFilters } from '../netns/observe.ts';
import { findDrift, type ObservedTree } from '../plan/drift.ts';
import { planAttachment } from '../plan/tree.ts';
import { readAttachmentState, requireUsableNetns } from './attachment.ts';
import { commandLogger, loadConfig, logWarnings } from './config.ts';

export async function check(context: CommandContext): Promise<void> {
  const { env } = context;
  const { policy, settings, warnings } = loadConfig(context);
  logWarnings(commandLogger(context, settings), warnings);
  requireSandboxInterface(context.config['prevResult'], env.ifname);
  requireUsableNetns(env.netns);
  const state = await readAttachmentState(env.netns, env.ifname);
  if (!state.iface) throw new CniError(ErrorCode.interfaceNotFound, `interface ${env.ifname} not found in ${env.netns}`);
  const plan = planAttachment(policy, env.ifname, state.iface.mtu);
  const tree = async (dev: string, present: boolean, root: ObservedTree['qdisc']): Promise<ObservedTree> =>
    present && root
      ? { qdisc: root, classes: await readClasses(env.netns, dev), filters: await readFilters(env.netns, dev, 'root') }
      : { qdisc: root, classes: [], filters: [] };
  const [egress, ingress, redirects] = await Promise.all([
    tree(env.ifname, true, state.root),
    tree(plan.ifb, state.ifb !== undefined, state.ifbRoot),
    state.ingress ? readFilters(env.netns, env.ifname, 'ingress') : Promise.resolve([]),
  ]);
  const drift = findDrift(plan, { iface: state.iface, ifb: state.ifb, egress, ingressQdisc: state.ingress, redirects, ingress });
  if (drift.length) {
    throw new CniError(
      ErrorCode.stateDrift,
      `tcqos shaping on ${env.ifname} differs from its configuration: ${drift[0]}${drift.length > 1 ? ` (and ${drift.length - 1} more)` : ''}`,
      drift.join('\n'),
    );
  }
}
