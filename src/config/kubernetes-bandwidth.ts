/**
 * The Kubernetes bandwidth annotations (kubernetes.io/ingress-bandwidth, kubernetes.io/egress-bandwidth)
 * turned into the runtime bandwidth object containerd would send for them, so the node agent
 * derives exactly the policy ADD derived. Like containerd, the burst is 2^32-1 bits (the CRI has no
 * burst annotation); derivePolicy then clamps it as it clamps containerd's (maxBurst, else 50 ms at
 * the rate and at least 64 KiB), so both paths end with the same bucket.
 */
import { ConfigError } from './errors.ts';
import { checkAnnotationSize, policyAnnotations } from './policy-annotations.ts';
import { quote } from './quote.ts';
import { parseRate } from './units.ts';

export const INGRESS_BANDWIDTH_ANNOTATION = 'kubernetes.io/ingress-bandwidth';
export const EGRESS_BANDWIDTH_ANNOTATION = 'kubernetes.io/egress-bandwidth';

/** tcqos.io/policy, tcqos.io/policy.<network> and the kubernetes.io/*-bandwidth pair, keys in order (so equal sets fingerprint equally). */
export function shapingAnnotations(all: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const found: Record<string, string> = policyAnnotations(all ?? {});
  for (const key of [INGRESS_BANDWIDTH_ANNOTATION, EGRESS_BANDWIDTH_ANNOTATION]) {
    if (all && Object.hasOwn(all, key)) found[key] = all[key]!;
  }
  return Object.fromEntries(Object.keys(found).sort().map((key) => [key, found[key]!]));
}

/** Whether the pod sets either kubernetes.io/*-bandwidth annotation (then the runtime's values come from them). */
export function hasBandwidthAnnotations(annotations: Readonly<Record<string, string>> | undefined): boolean {
  return annotations !== undefined && (Object.hasOwn(annotations, INGRESS_BANDWIDTH_ANNOTATION) || Object.hasOwn(annotations, EGRESS_BANDWIDTH_ANNOTATION));
}

/** What containerd sends as every burst (Go's math.MaxUint32 bits). */
const CONTAINERD_BURST_BITS = 2 ** 32 - 1;

/** A Kubernetes resource quantity: a decimal number, then an SI or binary suffix or a decimal exponent. */
const QUANTITY = /^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$/;
const SUFFIX_SCALE: Record<string, number> = {
  '': 1, n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/**
 * {ingressRate, ingressBurst, egressRate, egressBurst} in bits/s and bits for the directions the
 * pod annotates, or undefined when it annotates neither. Throws ConfigError naming the annotation.
 */
export function runtimeFromAnnotations(annotations: Readonly<Record<string, string>>): Record<string, unknown> | undefined {
  const bandwidth: Record<string, number> = {};
  for (const [direction, key] of [['ingress', INGRESS_BANDWIDTH_ANNOTATION], ['egress', EGRESS_BANDWIDTH_ANNOTATION]] as const) {
    if (!Object.hasOwn(annotations, key)) continue;
    bandwidth[`${direction}Rate`] = bitsPerSecond(annotations[key], key);
    bandwidth[`${direction}Burst`] = CONTAINERD_BURST_BITS;
  }
  return Object.keys(bandwidth).length ? bandwidth : undefined;
}

/** The quantity in bits per second, rounded up to a whole bit as Kubernetes' Quantity.Value() does. */
function bitsPerSecond(text: unknown, annotation: string): number {
  if (typeof text === 'string') checkAnnotationSize(annotation, text);
  const found = typeof text === 'string' ? QUANTITY.exec(text) : null;
  if (!found) {
    throw new ConfigError('', `${quote(text)} is not a Kubernetes quantity (e.g. "10M", "1Gi")`, `annotation ${annotation}`);
  }
  const exponent = found[2]?.match(/^[eE]/) ? 10 ** Number(found[2].slice(1)) : undefined;
  const scale = exponent ?? SUFFIX_SCALE[found[2] ?? '']!;
  // toPrecision drops float noise (0.3 * 10 = 3.0000000000000004) before rounding up.
  const bits = Math.ceil(Number((Number(found[1]) * scale).toPrecision(15)));
  try {
    return parseRate(bits);
  } catch (error) {
    throw new ConfigError('', `${quote(text)}: ${(error as Error).message}`, `annotation ${annotation}`);
  }
}
