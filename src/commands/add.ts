/** ADD: derive the policy, then shape the attachment in one go (or not at all); prevResult passes unchanged. */
import { requireSandboxInterface } from '../cni/prev-result.ts';
import type { CommandContext } from '../cni/skel.ts';
import { isEmptyPolicy } from '../config/policy.ts';
import { attach } from '../attachment/attach.ts';
import { withNetns, type SessionOptions } from '../netns/session.ts';
import { ifbTree, type ShapingTree } from '../plan/tree.ts';
import { commandLogger, derive, deriveWithPolicy, hostEndFor, keptAnnotations, logConfigNotes, podIdentity, policyFromEntry, policyInputs, registryFor } from './context.ts';

export async function add(context: CommandContext, tools: SessionOptions): Promise<string> {
  const { env } = context;
  const configured = await derive(context);
  const log = commandLogger(context, configured.settings);
  // the BandwidthPolicy the node agent resolved for the pod, shaping it from its first packet
  const bandwidthPolicy = policyFromEntry(context, configured.settings, log);
  const derived = bandwidthPolicy ? await deriveWithPolicy(context, bandwidthPolicy, configured, log) : configured;
  logConfigNotes(log, derived);
  requireSandboxInterface(context.config['prevResult'], env.ifname);
  const result = context.rawPrevResult!;
  if (isEmptyPolicy(derived.policy)) {
    log.info({}, 'no bandwidth configured: nothing to shape');
    return result;
  }
  const inputs = policyInputs(context);
  const annotations = keptAnnotations(inputs);
  const pod = podIdentity(context);
  const host = await hostEndFor(context, derived.settings, tools);
  const plan = await withNetns(env.netns, tools, (session) =>
    attach(
      registryFor(context, derived.settings),
      session,
      {
        containerId: env.containerId,
        ifname: env.ifname,
        netns: env.netns,
        network: typeof context.config['name'] === 'string' ? context.config['name'] : '',
        ...(pod ? { pod } : {}),
        config: inputs.config,
        ...(inputs.runtime ? { runtime: inputs.runtime } : {}),
        ...(annotations ? { annotations } : {}),
        ...(bandwidthPolicy && derived !== configured ? { bandwidthPolicy } : {}),
        ...(host ? { host } : {}),
        derived,
      },
      log,
      tools,
    ),
  );
  log.info({ site: plan.site, interface: plan.ifname, egress: summary(plan.egress), ingress: summary(plan.ingress), ifb: ifbTree(plan) ? plan.ifb : undefined, sources: derived.sources }, 'shaping installed');
  return result;
}

function summary(tree: ShapingTree | undefined): string | undefined {
  return tree?.classes.map((c) => `${c.name}=${c.rateBytes * 8}`).join(',');
}
