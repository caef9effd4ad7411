/**
 * The part of a pod the agent reads: who it is and the annotations that set its shaping. Only
 * these annotations are handed on and compared, so an unrelated edit (a label, kubectl's
 * last-applied-configuration) never re-applies anything.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { shapingAnnotations } from '../config/kubernetes-bandwidth.ts';

export interface PodView {
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string;
  /** The pod's shaping annotations only (see shapingAnnotations). */
  readonly annotations: Readonly<Record<string, string>>;
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
