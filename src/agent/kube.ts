/**
 * The Kubernetes API as the agent uses it, over the official client: list and watch the pods of
 * one node, post an Event on a pod. Everything the rest of the agent sees is plain data
 * (PodView, WatchEvent), so only this module knows the client's calling conventions.
 */
import { CoreV1Api, KubeConfig, Watch, type CoreV1Event, type V1Pod } from '@kubernetes/client-node';
import { podView, type PodView } from './pods.ts';

export interface PodList {
  readonly pods: readonly PodView[];
  readonly resourceVersion: string;
}

export type WatchEvent =
  | { readonly type: 'ADDED' | 'MODIFIED' | 'DELETED'; readonly pod: PodView; readonly resourceVersion: string }
  | { readonly type: 'BOOKMARK'; readonly resourceVersion: string }
  /** The server's Status: code 410 means the resourceVersion is too old (history compacted). */
  | { readonly type: 'ERROR'; readonly code?: number; readonly message: string };

export interface PodApi {
  /** Where the API server is, for logs. */
  readonly server: string;
  listPods(): Promise<PodList>;
  /**
   * Opens a watch from `resourceVersion`; resolves once the server accepted it (or failed: then
   * `onDone` has already been called with the error). Returns a function that ends it.
   */
  watchPods(resourceVersion: string, timeoutSeconds: number, onEvent: (event: WatchEvent) => void, onDone: (error: unknown) => void): Promise<() => void>;
  createEvent(namespace: string, event: CoreV1Event): Promise<void>;
}

/** A kubeconfig file if given; else the pod's service account inside a cluster; else the usual places. */
export function loadKubeConfig(file: string | undefined, env: NodeJS.ProcessEnv): KubeConfig {
  const config = new KubeConfig();
  if (file !== undefined) config.loadFromFile(file);
  else if (env['KUBERNETES_SERVICE_HOST']) config.loadFromCluster();
  else config.loadFromDefault();
  if (!config.getCurrentCluster()) throw new Error('the kubeconfig names no current cluster');
  return config;
}

export function podApi(config: KubeConfig, node: string): PodApi {
  const core = config.makeApiClient(CoreV1Api);
  const watch = new Watch(config);
  const fieldSelector = `spec.nodeName=${node}`;
  return {
    server: config.getCurrentCluster()!.server,
    async listPods() {
      const list = await core.listPodForAllNamespaces({ fieldSelector });
      return { pods: list.items.flatMap((pod) => podView(pod) ?? []), resourceVersion: list.metadata?.resourceVersion ?? '' };
    },
    async watchPods(resourceVersion, timeoutSeconds, onEvent, onDone) {
      const controller = await watch.watch(
        '/api/v1/pods',
        { fieldSelector, resourceVersion, allowWatchBookmarks: true, timeoutSeconds },
        (type: string, object: unknown) => {
          const event = watchEvent(type, object);
          if (event) onEvent(event);
        },
        onDone,
      );
      return () => controller.abort();
    },
    async createEvent(namespace, event) {
      await core.createNamespacedEvent({ namespace, body: event });
    },
  };
}

function watchEvent(type: string, object: unknown): WatchEvent | undefined {
  const resourceVersion = (object as V1Pod | undefined)?.metadata?.resourceVersion ?? '';
  switch (type) {
    case 'ADDED':
    case 'MODIFIED':
    case 'DELETED': {
      const pod = podView(object as V1Pod);
      return pod && { type, pod, resourceVersion };
    }
    case 'BOOKMARK':
      return { type, resourceVersion };
    case 'ERROR': {
      const status = object as { code?: number; message?: string } | undefined;
      return { type, ...(typeof status?.code === 'number' ? { code: status.code } : {}), message: status?.message ?? 'watch error' };
    }
    default:
      return undefined;
  }
}

/** The HTTP status of a failed list (the client's ApiException) or watch (statusCode). */
export function httpStatusOf(error: unknown): number | undefined {
  const candidate = error as { code?: unknown; statusCode?: unknown } | undefined;
  if (typeof candidate?.statusCode === 'number') return candidate.statusCode;
  if (typeof candidate?.code === 'number') return candidate.code;
  return undefined;
}
