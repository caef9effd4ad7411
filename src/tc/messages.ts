/** What tc's and ip's error messages mean: a kernel feature missing, or something already installed. */

const KERNEL_FEATURES: ReadonlyArray<[RegExp, string]> = [
  [/Unknown device type/i, 'ifb devices (CONFIG_IFB / module ifb)'],
  [/qdisc "?htb"?|kind "?htb"?/i, 'the HTB qdisc (CONFIG_NET_SCH_HTB / module sch_htb)'],
  [/qdisc "?ingress"?/i, 'the ingress qdisc (CONFIG_NET_SCH_INGRESS / module sch_ingress)'],
  [/qdisc "?tbf"?|kind "?tbf"?/i, 'the TBF qdisc (CONFIG_NET_SCH_TBF / module sch_tbf)'],
  [/filter "?u32"?|kind "?u32"?/i, 'the u32 classifier (CONFIG_NET_CLS_U32 / module cls_u32)'],
  [/action "?mirred"?|mirred.*(unknown|not found|failed)/i, 'the mirred action (CONFIG_NET_ACT_MIRRED / module act_mirred)'],
  [/Specified qdisc kind is unknown/i, 'a qdisc tcqos needs (htb, tbf or ingress)'],
];

/** The kernel feature a tc/ip error names as missing, in words with its config option. */
export function missingKernelFeature(stderr: string): string | undefined {
  return KERNEL_FEATURES.find(([pattern]) => pattern.test(stderr))?.[1];
}

/** tc's words for "something is already installed there". */
export function isAlreadyInstalled(stderr: string): boolean {
  return /File exists|Exclusivity flag on/i.test(stderr);
}

/** The batch line tc names in "Command failed -:N". */
export function failedBatchLine(stderr: string, script: string | undefined): string | undefined {
  const number = /Command failed -:(\d+)/.exec(stderr)?.[1];
  return number && script ? script.split('\n')[Number(number) - 1] : undefined;
}
