/** ADD: validate, plan, apply in one go (or not at all), pass prevResult on unchanged. */
import { CniError, ErrorCode } from '../cni/errors.ts';
import { requireSandboxInterface } from '../cni/prev-result.ts';
import type { CommandContext } from '../cni/skel.ts';
import { isEmptyPolicy } from '../config/policy.ts';
import type { Logger } from '../log.ts';
import { mustRunInNetns, ToolError } from '../netns/exec.ts';
import { lockPath, withAttachmentLock } from '../netns/lock.ts';
import { ifbSetupLines, script, setupLines } from '../plan/batch.ts';
import { isOurs } from '../plan/drift.ts';
import { planAttachment, type AttachmentPlan } from '../plan/tree.ts';
import { foreignRoot, readAttachmentState, removeAttachment, requireUsableNetns } from './attachment.ts';
import { commandLogger, loadConfig, logWarnings } from './config.ts';
import { describeToolError } from './failures.ts';
import { maybeKill, withInjectedFailure } from './fault-point.ts';

export const LOCK_TIMEOUT_MS = 20_000;

export async function add(context: CommandContext): Promise<string> {
  const { env } = context;
  const { policy, settings, warnings } = loadConfig(context);
  const log = commandLogger(context, settings);
  logWarnings(log, warnings);
  requireSandboxInterface(context.config['prevResult'], env.ifname);
  const result = context.rawPrevResult!;
  if (isEmptyPolicy(policy)) {
    log.info({}, 'no bandwidth configured: nothing to shape');
    return result;
  }
  requireUsableNetns(env.netns);
  await withAttachmentLock(lockPath(env.netns, env.ifname), LOCK_TIMEOUT_MS, async () => {
    const state = await readAttachmentState(env.netns, env.ifname);
    maybeKill(process.env, 'after-read');
    if (!state.iface) throw new CniError(ErrorCode.interfaceNotFound, `interface ${env.ifname} not found in ${env.netns}`);
    const foreign = foreignRoot(state);
    if (foreign && policy.egress) {
      throw new CniError(
        ErrorCode.foreignQdisc,
        `${env.ifname} already has a ${foreign.kind} root qdisc (handle ${foreign.handle}) that tcqos did not install: remove it or do not chain two shapers`,
      );
    }
    if (state.ingress && !state.ingressIsOurs && policy.ingress) {
      throw new CniError(ErrorCode.foreignQdisc, `${env.ifname} already has an ingress qdisc that tcqos did not install`);
    }
    // A repeated ADD converges: what an earlier ADD left is replaced, not tripped over.
    if (state.ifb || state.ingressIsOurs || isOurs(state.root)) {
      await removeAttachment(env.netns, env.ifname, state);
    }
    const plan = planAttachment(policy, env.ifname, state.iface.mtu);
    await applyOrRollBack(env.netns, plan, log);
    log.info({ egress: summary(plan.egress), ingress: summary(plan.ingress), ifb: plan.ingress ? plan.ifb : undefined }, 'shaping installed');
  });
  return result;
}

async function applyOrRollBack(netns: string, plan: AttachmentPlan, log: Logger): Promise<void> {
  const ipScript = script(ifbSetupLines(plan));
  const tcScript = script(withInjectedFailure(process.env, setupLines(plan)));
  let step = 'creating the ifb for ingress shaping';
  try {
    if (ipScript) await mustRunInNetns(netns, 'ip', ['-batch', '-'], ipScript);
    maybeKill(process.env, 'after-ifb');
    step = `installing shaping on ${plan.ifname}`;
    await mustRunInNetns(netns, 'tc', ['-batch', '-'], tcScript);
    maybeKill(process.env, 'after-tc');
  } catch (error) {
    await rollBack(netns, plan.ifname, log);
    if (error instanceof ToolError) throw describeToolError(error, step, step.startsWith('creating') ? ipScript : tcScript);
    throw error;
  }
}

/** tc -batch is not atomic: remove whatever part of this ADD landed. */
async function rollBack(netns: string, ifname: string, log: Logger): Promise<void> {
  try {
    await removeAttachment(netns, ifname, await readAttachmentState(netns, ifname));
  } catch (error) {
    log.error({ err: error }, 'rolling back a failed ADD failed too');
  }
}

function summary(tree: AttachmentPlan['egress']): string | undefined {
  return tree?.classes.map((c) => `${c.name}=${c.rateBytes * 8}`).join(',');
}
