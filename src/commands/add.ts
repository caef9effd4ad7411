/**
 * ADD: validate, plan, apply in one go (or not at all), pass prevResult on unchanged.
 *
 * A fresh attachment costs two processes: one `ip -batch` that creates the ifb and lists the links
 * (MTU, root qdisc), and one `tc -batch` that installs both directions. Anything already on the
 * interface (an earlier ADD, an interrupted one, someone else's qdisc) sends ADD down a slower path
 * that reads the tc state, refuses foreign qdiscs, removes tcqos's own and applies once more.
 */
import { CniError, ErrorCode } from '../cni/errors.ts';
import { requireSandboxInterface } from '../cni/prev-result.ts';
import type { CommandContext } from '../cni/skel.ts';
import { isEmptyPolicy, type Policy } from '../config/policy.ts';
import type { Logger } from '../log.ts';
import { runInNetns, ToolError } from '../netns/exec.ts';
import { parseTcJsonSequence } from '../netns/json.ts';
import { lockPath, withAttachmentLock } from '../netns/lock.ts';
import { linksFromJson } from '../netns/observe.ts';
import { prepareLines, script, setupLines } from '../plan/batch.ts';
import { ifbName, planAttachment, type AttachmentPlan } from '../plan/tree.ts';
import { foreignIngress, foreignRoot, hasAnythingOfOurs, readAttachmentState, removeAttachment, requireUsableNetns } from './attachment.ts';
import { commandLogger, loadConfig, logConfigNotes } from './config.ts';
import { describeToolError } from './failures.ts';
import { maybeKill, withInjectedFailure } from './fault-point.ts';

export const LOCK_TIMEOUT_MS = 20_000;
/** Root qdiscs a fresh interface has: nothing was installed on it yet. */
const UNTOUCHED_ROOT_KINDS = new Set(['noqueue', 'noop']);

export async function add(context: CommandContext): Promise<string> {
  const { env } = context;
  const config = await loadConfig(context);
  const { policy } = config;
  const log = commandLogger(context, config.settings);
  logConfigNotes(log, config);
  requireSandboxInterface(context.config['prevResult'], env.ifname);
  const result = context.rawPrevResult!;
  if (isEmptyPolicy(policy)) {
    log.info({}, 'no bandwidth configured: nothing to shape');
    return result;
  }
  requireUsableNetns(env.netns);
  await withAttachmentLock(lockPath(env.netns, env.ifname), LOCK_TIMEOUT_MS, async () => {
    let outcome = await applyFresh(env.netns, env.ifname, policy, log, true);
    if (outcome === 'occupied') {
      // Something is there already: tcqos's own state converges, anyone else's is left alone.
      const state = readAttachmentState(env.netns, env.ifname);
      const foreignQdisc = (policy.egress && foreignRoot(state)) || (policy.ingress && foreignIngress(state));
      await removeAttachment(env.netns, state);
      if (foreignQdisc) {
        throw new CniError(
          ErrorCode.foreignQdisc,
          `${env.ifname} already has a ${foreignQdisc.kind} ${foreignQdisc.root ? 'root' : 'ingress'} qdisc (handle ${foreignQdisc.handle}) that tcqos did not install: remove it or do not chain two shapers`,
        );
      }
      outcome = await applyFresh(env.netns, env.ifname, policy, log, false);
      if (outcome === 'occupied') throw new CniError(ErrorCode.tryAgainLater, `${env.ifname} changed while tcqos was shaping it`);
    }
    log.info({ egress: summary(outcome.egress), ingress: summary(outcome.ingress), ifb: outcome.ingress ? outcome.ifb : undefined }, 'shaping installed');
  });
  return result;
}

/**
 * Installs the plan; 'occupied' when something is already there (with `firstTry`, any root qdisc
 * but the kernel's default counts; after a cleanup only a clash in tc itself does).
 */
async function applyFresh(netns: string, ifname: string, policy: Policy, log: Logger, firstTry: boolean): Promise<AttachmentPlan | 'occupied'> {
  const ifb = policy.ingress ? ifbName(ifname) : undefined;
  const prepared = runInNetns(netns, 'ip', ['-j', '-d', '-force', '-batch', '-'], script(prepareLines(ifb)));
  const listing = parseTcJsonSequence(prepared.stdout).at(-1);
  if (listing === undefined) throw describeToolError(new ToolError(prepared), 'listing the links of the pod netns');
  const links = linksFromJson(listing);
  maybeKill(process.env, 'after-read');
  const iface = links.find((link) => link.name === ifname);
  const ifbLink = links.find((link) => link.name === ifbName(ifname));
  if (ifb !== undefined && ifbLink?.kind !== 'ifb') {
    throw describeToolError(new ToolError(prepared), ifbLink ? `a ${ifbLink.kind ?? 'non-ifb'} device is named ${ifb}` : 'creating the ifb for ingress shaping');
  }
  if (!iface) {
    await rollBack(netns, ifname, log);
    throw new CniError(ErrorCode.interfaceNotFound, `interface ${ifname} not found in ${netns}`);
  }
  maybeKill(process.env, 'after-ifb');
  const leftovers = !UNTOUCHED_ROOT_KINDS.has(iface.rootQdiscKind) || ifbLink?.rootQdiscKind === 'htb' || (ifb === undefined && ifbLink?.kind === 'ifb');
  if (firstTry && leftovers) return 'occupied';

  const plan = planAttachment(policy, ifname, iface.mtu);
  const tcScript = script(withInjectedFailure(process.env, setupLines(plan)));
  const installed = runInNetns(netns, 'tc', ['-batch', '-'], tcScript);
  if (installed.exitCode !== 0) {
    if (/File exists|Exclusivity flag on/.test(installed.stderr)) return 'occupied';
    await rollBack(netns, ifname, log);
    throw describeToolError(new ToolError(installed), `installing shaping on ${ifname}`, tcScript);
  }
  maybeKill(process.env, 'after-tc');
  return plan;
}

/** tc -batch is not atomic: remove whatever part of this ADD landed. */
async function rollBack(netns: string, ifname: string, log: Logger): Promise<void> {
  try {
    const state = readAttachmentState(netns, ifname);
    if (hasAnythingOfOurs(state)) await removeAttachment(netns, state);
  } catch (error) {
    log.error({ err: error }, 'rolling back a failed ADD failed too');
  }
}

function summary(tree: AttachmentPlan['egress']): string | undefined {
  return tree?.classes.map((c) => `${c.name}=${c.rateBytes * 8}`).join(',');
}
