/**
 * The part of a pod the agent reads: who it is, its labels (BandwidthPolicies select by them), the
 * annotations that set its shaping, and the privileges that let it undo shaping inside its own
 * netns. Only these are kept in the cache, so an unrelated edit (a status update, kubectl's
 * last-applied-configuration) changes nothing.
 */
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { shapingAnnotations } from '../config/kubernetes-bandwidth.ts';

export interface PodView {
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string;
  readonly labels: Readonly<Record<string, string>>;
  /** The pod's shaping annotations only (see shapingAnnotations). */
  readonly annotations: Readonly<Record<string, string>>;
  /**
   * What lets the pod change or skip qdiscs in its own netns, one line each: `container "app" is
   * privileged`, `container "app" adds NET_ADMIN`. Empty for most pods.
   */
  readonly privileges: readonly string[];
}

export function podView(pod: V1Pod): PodView | undefined {
  const metadata = pod.metadata;
  if (!metadata?.name) return undefined;
  return {
    namespace: metadata.namespace ?? 'default',
    name: metadata.name,
    ...(metadata.uid ? { uid: metadata.uid } : {}),
    labels: { ...metadata.labels },
    annotations: shapingAnnotations(metadata.annotations),
    privileges: privilegesOf(pod),
  };
}

export function podKey(pod: { readonly namespace: string; readonly name: string }): string {
  return `${pod.namespace}/${pod.name}`;
}

/** A privileged container or one adding NET_ADMIN (or ALL) can delete the qdiscs of its pod's interfaces. */
function privilegesOf(pod: V1Pod): string[] {
  const containers: V1Container[] = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? []), ...((pod.spec?.ephemeralContainers ?? []) as V1Container[])];
  const found: string[] = [];
  for (const container of containers) {
    const context = container.securityContext;
    if (context?.privileged) {
      found.push(`container "${container.name}" is privileged`);
      continue;
    }
    const added = (context?.capabilities?.add ?? []).map((capability) => capability.toUpperCase().replace(/^CAP_/, ''));
    if (added.includes('ALL')) found.push(`container "${container.name}" adds ALL capabilities`);
    else if (added.includes('NET_ADMIN')) found.push(`container "${container.name}" adds NET_ADMIN`);
  }
  return found;
}
