/**
 * CHECK: the kernel against the policy in force. Until an attachment is changed live that is what
 * the configuration derives (as at ADD); once `tcqos update` or the node agent changed it, it is
 * the registry's record, which must still keep within the caps: the configuration's, or the
 * operator's where the operator set them.
 */
import { CniError, ErrorCode } from '../cni/errors.ts';
import { requireSandboxInterface } from '../cni/prev-result.ts';
import type { CommandContext } from '../cni/skel.ts';
import { exceedsCaps, verifyAttachment } from '../attachment/inspect.ts';
import { derivePolicy } from '../config/derive.ts';
import { policyFromJson } from '../config/policy-json.ts';
import type { Policy } from '../config/policy.ts';
import { withNetns } from '../netns/session.ts';
import { assignAttachmentClassIds } from '../plan/class-ids.ts';
import type { AttachmentRecord } from '../state/record.ts';
import { commandLogger, derive, hostEndFor, logConfigNotes, registryFor } from './context.ts';
import { withSite } from '../attachment/site.ts';
import { verifyUplinkClass } from '../attachment/uplink.ts';

export async function check(context: CommandContext): Promise<void> {
  const { env } = context;
  const derived = await derive(context);
  const log = commandLogger(context, derived.settings);
  logConfigNotes(log, derived);
  requireSandboxInterface(context.config['prevResult'], env.ifname);
  const registry = registryFor(context, derived.settings);
  const record = registry.get({ containerId: env.containerId, ifname: env.ifname });
  // a BandwidthPolicy applied at ADD (from the agent's entry) is in the record only
  const changedLive = record !== undefined && (record.updatedAt !== record.createdAt || record.bandwidthPolicy !== undefined);
  const policy = changedLive ? await policyFromJson(record.policy) : derived.policy;
  if (changedLive) {
    const beyond = exceedsCaps(policy, await capsOf(record, derived.caps));
    if (beyond.length) throw new CniError(ErrorCode.stateDrift, `the policy in force on ${env.ifname} exceeds its caps: ${beyond[0]}`, beyond.join('\n'));
  }
  const classIds = record?.classIds ?? assignAttachmentClassIds(policy);
  // Without a record (CHECK before any ADD), the site is found as ADD would find it.
  const host = record ? record.host : await hostEndFor(context, derived.settings, {});
  await withNetns(env.netns, {}, (pod) =>
    withSite({ ifname: env.ifname, ...(host ? { host } : {}) }, pod, {}, ({ session, ifname, site }) => verifyAttachment(session, { ifname, site, policy, classIds })),
  );
  if (record) await verifyUplinkClass(registry, record, log);
}

/** The configuration's caps, except where the operator replaced them (`tcqos update`). */
async function capsOf(record: AttachmentRecord, configured: Policy): Promise<Policy> {
  const operators = (await derivePolicy({ config: record.config })).caps;
  return {
    ...(record.sources.egress === 'operator' ? (operators.egress ? { egress: operators.egress } : {}) : configured.egress ? { egress: configured.egress } : {}),
    ...(record.sources.ingress === 'operator' ? (operators.ingress ? { ingress: operators.ingress } : {}) : configured.ingress ? { ingress: configured.ingress } : {}),
  };
}
