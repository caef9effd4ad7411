/**
 * BandwidthPolicies over the official client: listed and watched across namespaces
 * (CustomObjectsApi and Watch; few objects, so every agent holds them all), Events posted on a
 * policy, and the policy's status written with JSON merge patch on the status subresource under
 * the resourceVersion the agent last saw (optimistic concurrency: a node agent never overwrites
 * another's entry, it gets 409 Conflict and writes again on the newer object). A cluster without
 * the CRD lists no policies and keeps trying to watch them, with back-off.
 */
import { CustomObjectsApi, PatchStrategy, setHeaderOptions, Watch, type CoreV1Event, type KubeConfig } from '@kubernetes/client-node';
import { policyObject, POLICY_GROUP, POLICY_PLURAL, POLICY_VERSION, type PolicyObject } from '../policy/object.ts';
import { httpStatusOf, watchPath, type ListWatch } from './kube.ts';

/** One agent's entry in a policy's status.nodes. */
export interface NodeStatus {
  readonly node: string;
  readonly observedGeneration: number;
  readonly selectedPods: number;
  readonly shapedPods: number;
  readonly problem?: string;
  readonly updatedAt: string;
}

export interface PolicyStatus {
  readonly selector?: string;
  readonly selectedPods?: number;
  readonly shapedPods?: number;
  readonly nodeCount?: number;
  readonly nodes?: readonly NodeStatus[];
}

/** A policy as the agent caches it: the object, and its status and resourceVersion for writing the status. */
export interface PolicyView extends PolicyObject {
  readonly resourceVersion: string;
  readonly status?: PolicyStatus;
}

export interface PolicyApi {
  readonly policies: ListWatch<PolicyView>;
  /** Creates the Event; false when one of its name exists already (another agent reported the same change). */
  createEvent(namespace: string, event: CoreV1Event): Promise<boolean>;
  /** Replaces the policy's status if it is still at `resourceVersion`; 'conflict' when it changed meanwhile. */
  writeStatus(policy: Pick<PolicyView, 'namespace' | 'name' | 'resourceVersion'>, status: PolicyStatus): Promise<'written' | 'conflict' | 'gone'>;
}

const PATH = `/apis/${POLICY_GROUP}/${POLICY_VERSION}/${POLICY_PLURAL}`;
const WHERE = { group: POLICY_GROUP, version: POLICY_VERSION, plural: POLICY_PLURAL };

function policyView(raw: unknown): PolicyView | undefined {
  const object = policyObject(raw);
  if (!object) return undefined;
  const { metadata, status } = raw as { metadata: { resourceVersion?: string }; status?: PolicyStatus };
  return { ...object, resourceVersion: metadata.resourceVersion ?? '', ...(status ? { status } : {}) };
}

export function policyApi(config: KubeConfig, createEvent: (namespace: string, event: CoreV1Event) => Promise<void>): PolicyApi {
  const custom = config.makeApiClient(CustomObjectsApi);
  const watcher = new Watch(config);
  return {
    policies: {
      what: 'the BandwidthPolicies',
      async list() {
        let list: { items?: unknown[]; metadata?: { resourceVersion?: string } };
        try {
          list = (await custom.listClusterCustomObject(WHERE)) as typeof list;
        } catch (error) {
          // no CRD installed: no policies (the watch keeps failing, with back-off, until it is)
          if (httpStatusOf(error) === 404) return { items: [], resourceVersion: '' };
          throw error;
        }
        return { items: (list.items ?? []).flatMap((item) => policyView(item) ?? []), resourceVersion: list.metadata?.resourceVersion ?? '' };
      },
      watch: (resourceVersion, timeoutSeconds, onEvent, onDone) =>
        watchPath(watcher, PATH, { resourceVersion, allowWatchBookmarks: true, timeoutSeconds }, policyView, onEvent, onDone),
    },
    async createEvent(namespace, event) {
      try {
        await createEvent(namespace, event);
        return true;
      } catch (error) {
        if (httpStatusOf(error) === 409) return false;
        throw error;
      }
    },
    async writeStatus(policy, status) {
      try {
        await custom.patchNamespacedCustomObjectStatus(
          { ...WHERE, namespace: policy.namespace, name: policy.name, body: { metadata: { resourceVersion: policy.resourceVersion }, status } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
        return 'written';
      } catch (error) {
        const code = httpStatusOf(error);
        if (code === 409) return 'conflict';
        if (code === 404) return 'gone';
        throw error;
      }
    },
  };
}
