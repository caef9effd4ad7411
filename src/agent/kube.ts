/**
 * The Kubernetes API as the agent uses it, over the official client: list and watch a kind of
 * object (the pods of one node; another kind plugs in as another ListWatch), post an Event, and ask
 * the API server who a bearer token belongs to and what it may do (TokenReview and
 * SubjectAccessReview, for /metrics). Everything the rest of the agent sees is plain data, so only
 * this module knows the client's calling conventions.
 */
import { AuthenticationV1Api, AuthorizationV1Api, CoreV1Api, setHeaderOptions, Watch, type CoreV1Event, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { podView, type PodView } from './pods.ts';
import { policyApi, type PolicyApi } from './policy-api.ts';

export interface Listed<T> {
  readonly items: readonly T[];
  readonly resourceVersion: string;
}

export type WatchEvent<T> =
  | { readonly type: 'ADDED' | 'MODIFIED' | 'DELETED'; readonly object: T; readonly resourceVersion: string }
  | { readonly type: 'BOOKMARK'; readonly resourceVersion: string }
  /** The server's Status: code 410 means the resourceVersion is too old (history compacted). */
  | { readonly type: 'ERROR'; readonly code?: number; readonly message: string };

/** One kind of object, listed and watched: what a Reflector needs (client-go's ListerWatcher). */
export interface ListWatch<T> {
  /** What is listed and watched, for logs: "the pods of node a". */
  readonly what: string;
  list(): Promise<Listed<T>>;
  /**
   * Opens a watch from `resourceVersion`; resolves once the server accepted it (or failed: then
   * `onDone` has already been called with the error). Returns a function that ends it.
   */
  watch(resourceVersion: string, timeoutSeconds: number, onEvent: (event: WatchEvent<T>) => void, onDone: (error: unknown) => void): Promise<() => void>;
}

/** Who a bearer token belongs to, as the API server's TokenReview says. */
export interface TokenUser {
  readonly username: string;
  readonly uid?: string;
  readonly groups?: readonly string[];
  readonly extra?: Readonly<Record<string, readonly string[]>>;
}

export interface KubeApi {
  /** The API server's URL, for logs. */
  readonly server: string;
  /** Where the credentials came from, for logs. */
  readonly source: string;
  readonly pods: ListWatch<PodView>;
  /** The BandwidthPolicies of every namespace, their Events and status. */
  readonly policies: PolicyApi;
  createEvent(namespace: string, event: CoreV1Event): Promise<void>;
  /** The names of the cluster's nodes (listed metadata only): which nodes' status entries still count. */
  nodeNames(): Promise<string[]>;
  /** The token's user, or undefined when the API server does not authenticate it. */
  reviewToken(token: string): Promise<TokenUser | undefined>;
  /** Whether the user may `verb` the non-resource URL `path` (as RBAC's nonResourceURLs grant). */
  reviewAccess(user: TokenUser, path: string, verb: string): Promise<boolean>;
}

/** Asks for objects' metadata only (a PartialObjectMetadataList), falling back to whole objects. */
const METADATA_ONLY = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1, application/json';

export function kubeApi(config: KubeConfig, source: string, node: string): KubeApi {
  const core = config.makeApiClient(CoreV1Api);
  const authentication = config.makeApiClient(AuthenticationV1Api);
  const authorization = config.makeApiClient(AuthorizationV1Api);
  const watcher = new Watch(config);
  const fieldSelector = `spec.nodeName=${node}`;
  const createEvent = async (namespace: string, event: CoreV1Event) => {
    await core.createNamespacedEvent({ namespace, body: event });
  };
  return {
    server: config.getCurrentCluster()!.server,
    source,
    pods: {
      what: `the pods of node ${node}`,
      async list() {
        const list = await core.listPodForAllNamespaces({ fieldSelector });
        return { items: list.items.flatMap((pod) => podView(pod) ?? []), resourceVersion: list.metadata?.resourceVersion ?? '' };
      },
      watch: (resourceVersion, timeoutSeconds, onEvent, onDone) =>
        watchPath(watcher, '/api/v1/pods', { fieldSelector, resourceVersion, allowWatchBookmarks: true, timeoutSeconds }, (object) => podView(object as V1Pod), onEvent, onDone),
    },
    policies: policyApi(config, createEvent),
    createEvent,
    async nodeNames() {
      const list = await core.listNode({}, setHeaderOptions('Accept', METADATA_ONLY));
      return list.items.flatMap((node) => (node.metadata?.name ? [node.metadata.name] : []));
    },
    async reviewToken(token) {
      const review = await authentication.createTokenReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } } });
      const user = review.status?.user;
      if (!review.status?.authenticated || !user?.username) return undefined;
      return { username: user.username, ...(user.uid ? { uid: user.uid } : {}), ...(user.groups ? { groups: user.groups } : {}), ...(user.extra ? { extra: user.extra } : {}) };
    },
    async reviewAccess(user, path, verb) {
      const review = await authorization.createSubjectAccessReview({
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: {
            user: user.username,
            ...(user.uid ? { uid: user.uid } : {}),
            ...(user.groups ? { groups: [...user.groups] } : {}),
            ...(user.extra ? { extra: Object.fromEntries(Object.entries(user.extra).map(([key, values]) => [key, [...values]])) } : {}),
            nonResourceAttributes: { path, verb },
          },
        },
      });
      return review.status?.allowed === true;
    },
  };
}

/** A watch on `path` through the client's Watch, its objects turned into T (undefined: skipped). */
export async function watchPath<T>(
  watcher: Watch,
  path: string,
  query: Record<string, string | number | boolean | undefined>,
  decode: (object: unknown) => T | undefined,
  onEvent: (event: WatchEvent<T>) => void,
  onDone: (error: unknown) => void,
): Promise<() => void> {
  const controller = await watcher.watch(
    path,
    query,
    (type: string, object: unknown) => {
      const event = watchEvent(type, object, decode);
      if (event) onEvent(event);
    },
    onDone,
  );
  return () => controller.abort();
}

function watchEvent<T>(type: string, object: unknown, decode: (object: unknown) => T | undefined): WatchEvent<T> | undefined {
  const resourceVersion = (object as { metadata?: { resourceVersion?: string } } | undefined)?.metadata?.resourceVersion ?? '';
  switch (type) {
    case 'ADDED':
    case 'MODIFIED':
    case 'DELETED': {
      const decoded = decode(object);
      return decoded && { type, object: decoded, resourceVersion };
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
