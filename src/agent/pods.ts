/**
 * The part of a pod the agent reads: who it is and the annotations that set its shaping. Only
 * these annotations are handed on and compared, so an unrelated edit (a label, kubectl's
 * last-applied-configuration) never re-applies anything.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { EGRESS_BANDWIDTH_ANNOTATION, INGRESS_BANDWIDTH_ANNOTATION } from '../config/kubernetes-bandwidth.ts';
import { policyAnnotations } from '../config/policy-annotations.ts';

export interface PodView {
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string;
  /** The pod's shaping annotations only (see shapingAnnotations). */
  readonly annotations: Readonly<Record<string, string>>;
}

/** tcqos.io/policy, tcqos.io/policy.<network> and the kubernetes.io/*-bandwidth pair, keys in order (so equal sets fingerprint equally). */
export function shapingAnnotations(all: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const found: Record<string, string> = policyAnnotations(all ?? {});
  for (const key of [INGRESS_BANDWIDTH_ANNOTATION, EGRESS_BANDWIDTH_ANNOTATION]) {
    if (all && Object.hasOwn(all, key)) found[key] = all[key]!;
  }
  return Object.fromEntries(Object.keys(found).sort().map((key) => [key, found[key]!]));
}

export function podView(pod: V1Pod): PodView | undefined {
  const metadata = pod.metadata;
  if (!metadata?.name) return undefined;
  return {
    namespace: metadata.namespace ?? 'default',
    name: metadata.name,
    ...(metadata.uid ? { uid: metadata.uid } : {}),
    annotations: shapingAnnotations(metadata.annotations),
  };
}

export function podKey(pod: { readonly namespace: string; readonly name: string }): string {
  return `${pod.namespace}/${pod.name}`;
}

/** Equal exactly when two sets of shaping annotations (from shapingAnnotations) are equal. */
export function fingerprint(annotations: Readonly<Record<string, string>>): string {
  return JSON.stringify(annotations);
}
