/** Turning failures of ip/tc and surprises into CNI errors a user can act on. */
import { CniError, ErrorCode } from '../cni/errors.ts';
import type { CommandContext } from '../cni/skel.ts';
import { createLogger } from '../log.ts';
import { NetnsEnterError, ToolError } from '../netns/exec.ts';
import { LockTimeoutError } from '../netns/lock.ts';
import { ToolMissingError } from '../netns/tools.ts';

const KERNEL_FEATURES: ReadonlyArray<[RegExp, string]> = [
  [/Unknown device type/i, 'ifb devices (CONFIG_IFB / module ifb)'],
  [/qdisc "?htb"?|kind "?htb"?/i, 'the HTB qdisc (CONFIG_NET_SCH_HTB / module sch_htb)'],
  [/qdisc "?ingress"?/i, 'the ingress qdisc (CONFIG_NET_SCH_INGRESS / module sch_ingress)'],
  [/filter "?u32"?|kind "?u32"?/i, 'the u32 classifier (CONFIG_NET_CLS_U32 / module cls_u32)'],
  [/action "?mirred"?|mirred.*(unknown|not found|failed)/i, 'the mirred action (CONFIG_NET_ACT_MIRRED / module act_mirred)'],
  [/Specified qdisc kind is unknown/i, 'a qdisc tcqos needs (htb or ingress)'],
];

/** The batch line tc names in "Command failed -:N", for the error's details. */
function failedLine(error: ToolError, script: string | undefined): string | undefined {
  const number = /Command failed -:(\d+)/.exec(error.run.stderr)?.[1];
  return number && script ? script.split('\n')[Number(number) - 1] : undefined;
}

export function describeToolError(error: ToolError, doing: string, script?: string): CniError {
  const stderr = error.run.stderr.trim();
  const line = failedLine(error, script);
  const details = [line ? `failed line: ${line}` : '', `${error.run.command}: ${stderr}`].filter(Boolean).join('\n');
  const missing = KERNEL_FEATURES.find(([pattern]) => pattern.test(stderr));
  if (missing) return new CniError(ErrorCode.kernelFeatureMissing, `${doing}: this kernel lacks ${missing[1]}`, details);
  if (/Exclusivity flag on|File exists/i.test(stderr)) {
    return new CniError(ErrorCode.foreignQdisc, `${doing}: another qdisc is already installed there`, details);
  }
  return new CniError(ErrorCode.commandFailed, `${doing}: ${stderr.split('\n')[0] ?? 'tc failed'}`, details);
}

/** For the skel: anything a command threw that is not already a CNI error. */
export function describeFailure(error: unknown, context: Partial<CommandContext>): CniError {
  if (error instanceof ToolError) return describeToolError(error, 'running ip/tc in the pod netns');
  if (error instanceof ToolMissingError) return new CniError(ErrorCode.commandFailed, error.message);
  if (error instanceof NetnsEnterError) return new CniError(ErrorCode.invalidEnvironment, `CNI_NETNS ${error.message}`);
  if (error instanceof LockTimeoutError) return new CniError(ErrorCode.tryAgainLater, error.message);
  const env = context.env;
  createLogger({ logLevel: 'error' }, { command: env?.command ?? '', containerId: env?.containerId ?? '', ifname: env?.ifname ?? '' }).error(
    { err: error },
    'unexpected failure',
  );
  return new CniError(ErrorCode.internal, `tcqos internal error: ${(error as Error)?.message ?? String(error)}`);
}
