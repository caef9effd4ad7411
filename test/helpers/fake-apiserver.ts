/**
 * A stand-in for kube-apiserver (none can be installed here), speaking just enough of its wire
 * format for the agent: pods listed and watched across namespaces with a `spec.nodeName` field
 * selector, BandwidthPolicies (tcqos.io/v1alpha1) listed and watched across namespaces with
 * metadata.generation moving on spec changes only and their status subresource written with JSON
 * merge patch under a resourceVersion precondition (409 Conflict when it moved on), resourceVersions, watch events as newline-delimited JSON on a chunked response kept
 * open, BOOKMARKs, 410 Gone once history is compacted (as an ERROR event on a 200 response, or
 * as an HTTP 410, both of which real servers send), Events posted on pods, TokenReviews and
 * SubjectAccessReviews (for the agent's /metrics: tokens and grants set by the test), and injected
 * failures. Over HTTP, or HTTPS with a certificate the test gives. Everything the client asked is in
 * `requests`.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

export interface PodSpec {
  readonly namespace: string;
  readonly name: string;
  readonly nodeName: string;
  readonly annotations?: Record<string, string>;
  readonly labels?: Record<string, string>;
  readonly uid?: string;
  /** The pod's containers (default: one plain container "app"). */
  readonly containers?: ReadonlyArray<{ readonly name: string; readonly securityContext?: { readonly privileged?: boolean; readonly capabilities?: { readonly add?: readonly string[] } } }>;
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  /** The caller's bearer token. */
  readonly token?: string;
  /** ms since the server started */
  readonly at: number;
}

/** An Event as posted, with the name the server gave it. */
export interface PostedEvent {
  readonly metadata: { readonly name: string; readonly namespace: string };
  readonly involvedObject: { readonly kind: string; readonly namespace: string; readonly name: string; readonly uid?: string };
  readonly reason: string;
  readonly message: string;
  readonly type: string;
  readonly [key: string]: unknown;
}

/** A user a bearer token stands for (TokenReview's status.user). */
export interface FakeUser {
  readonly username: string;
  readonly groups?: readonly string[];
}

export interface FakeApiServerOptions {
  /** Serve HTTPS with this certificate and key (PEM). */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Listen here (default 127.0.0.1, any free port). */
  readonly host?: string;
  readonly port?: number;
}

/** A SubjectAccessReview as asked: who, and what non-resource URL and verb. */
export interface AccessReview {
  readonly user: string;
  readonly groups: readonly string[];
  readonly path: string;
  readonly verb: string;
  readonly allowed: boolean;
}

/** The next list or watch request fails: with this HTTP status, or its connection is cut. */
export type Fault = { readonly status: number } | 'reset';

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';
interface PodObject {
  metadata: { name: string; namespace: string; uid: string; resourceVersion: string; creationTimestamp: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  spec: { nodeName: string; containers: Array<{ name: string; image: string; securityContext?: object }> };
  status: { phase: string };
}
/** A BandwidthPolicy as the API server stores it. */
export interface PolicyObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; uid: string; resourceVersion: string; generation: number; creationTimestamp: string };
  spec: unknown;
  status?: Record<string, unknown>;
}
type Kind = 'pods' | 'policies';
interface Change {
  readonly resourceVersion: number;
  readonly type: EventType;
  readonly kind: Kind;
  readonly pod: PodObject | PolicyObject;
}
interface Watcher {
  readonly response: ServerResponse;
  readonly kind: Kind;
  readonly nodeName: string | undefined;
  readonly bookmarks: boolean;
}

const POLICIES_PATH = '/apis/tcqos.io/v1alpha1/bandwidthpolicies';
const POLICY_STATUS_PATH = /^\/apis\/tcqos\.io\/v1alpha1\/namespaces\/([^/]+)\/bandwidthpolicies\/([^/]+)\/status$/;

export class FakeApiServer {
  readonly requests: RecordedRequest[] = [];
  readonly events: PostedEvent[] = [];
  readonly accessReviews: AccessReview[] = [];
  /** Bearer tokens TokenReview authenticates, and whom as. */
  readonly tokens = new Map<string, FakeUser>();
  /** "user verb path" triples SubjectAccessReview allows (RBAC's nonResourceURLs). */
  readonly grants = new Set<string>();
  /** How a watch from a compacted resourceVersion is refused. */
  goneAs: 'event' | 'status' = 'event';
  /** Keeps watches open past their timeoutSeconds, silent: a connection that died without a word. */
  ignoreWatchTimeouts = false;
  /** Answers an Event's POST this much later (it is recorded at once). */
  eventDelayMs = 0;
  private readonly server: Server;
  private readonly started = Date.now();
  private readonly pods = new Map<string, PodObject>();
  private readonly policies = new Map<string, PolicyObject>();
  /** Status writes accepted, with the writer's patch (for tests: who wrote what). */
  readonly statusWrites: Array<{ readonly namespace: string; readonly name: string; readonly patch: Record<string, unknown> }> = [];
  /** Status writes refused with 409 Conflict. */
  statusConflicts = 0;
  /** The cluster's node names GET /api/v1/nodes lists; undefined: not served (404). */
  nodes: readonly string[] | undefined;
  /** Serve no BandwidthPolicy (404), as a cluster without the CRD. */
  withoutPolicyCrd = false;
  private readonly history: Change[] = [];
  private readonly watchers = new Set<Watcher>();
  private readonly faults: Fault[] = [];
  private resourceVersion = 1000;
  /** Watches from a resourceVersion below this get 410 Gone. */
  private compactedTo = 0;

  private readonly scheme: 'http' | 'https';

  private constructor(server: Server, scheme: 'http' | 'https') {
    this.server = server;
    this.scheme = scheme;
  }

  static async start(options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    let fake: FakeApiServer | undefined;
    const handler = (request: IncomingMessage, response: ServerResponse) => fake!.handle(request, response);
    const server = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler) : createServer(handler);
    fake = new FakeApiServer(server, options.tls ? 'https' : 'http');
    await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
    return fake;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    const { address, port } = this.server.address() as AddressInfo;
    return `${this.scheme}://${address.includes(':') ? `[${address}]` : address}:${port}`;
  }

  /** TokenReview authenticates `token` as `user`. */
  addToken(token: string, user: FakeUser): void {
    this.tokens.set(token, user);
  }

  /** SubjectAccessReview allows `user` to `verb` the non-resource URL `path` (as a ClusterRole with nonResourceURLs would). */
  grant(user: string, verb: string, path: string): void {
    this.grants.add(`${user} ${verb} ${path}`);
  }

  /** Open watch connections right now. */
  get openWatches(): number {
    return this.watchers.size;
  }

  /** Writes a kubeconfig pointing at this server (JSON is YAML too). */
  writeKubeconfig(path: string): void {
    const config = {
      apiVersion: 'v1',
      kind: 'Config',
      // the client refuses plain http unless TLS verification is explicitly off
      clusters: [{ name: 'fake', cluster: { server: this.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'agent', user: { token: 'fake-token' } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'agent' } }],
      'current-context': 'fake',
    };
    writeFileSync(path, JSON.stringify(config, null, 2));
  }

  /** Creates the pod (ADDED) or replaces its annotations and node (MODIFIED). */
  setPod(spec: PodSpec): void {
    const key = `${spec.namespace}/${spec.name}`;
    const known = this.pods.get(key);
    const pod: PodObject = {
      metadata: {
        name: spec.name,
        namespace: spec.namespace,
        uid: spec.uid ?? known?.metadata.uid ?? randomUUID(),
        resourceVersion: '',
        creationTimestamp: known?.metadata.creationTimestamp ?? new Date().toISOString(),
        ...(spec.annotations ? { annotations: { ...spec.annotations } } : {}),
        ...(spec.labels ? { labels: { ...spec.labels } } : {}),
      },
      spec: {
        nodeName: spec.nodeName,
        containers: (spec.containers ?? [{ name: 'app' }]).map((container) => ({ ...container, image: 'registry.invalid/app:1' })),
      },
      status: { phase: 'Running' },
    };
    this.change(known ? 'MODIFIED' : 'ADDED', pod);
  }

  /** Sets (a string) or removes (null) annotations of an existing pod: one MODIFIED event. */
  editAnnotations(namespace: string, name: string, edits: Record<string, string | null>): void {
    const known = this.mustGet(namespace, name);
    const annotations = { ...known.metadata.annotations };
    for (const [key, value] of Object.entries(edits)) {
      if (value === null) delete annotations[key];
      else annotations[key] = value;
    }
    this.change('MODIFIED', { ...known, metadata: { ...known.metadata, annotations } });
  }

  /** Replaces the pod's labels: one MODIFIED event. */
  setLabels(namespace: string, name: string, labels: Record<string, string>): void {
    const known = this.mustGet(namespace, name);
    this.change('MODIFIED', { ...known, metadata: { ...known.metadata, labels: { ...labels } } });
  }

  /** Creates the BandwidthPolicy (ADDED, generation 1) or replaces its spec (MODIFIED, generation + 1). */
  setPolicy(namespace: string, name: string, spec: unknown): void {
    const known = this.policies.get(`${namespace}/${name}`);
    const policy: PolicyObject = {
      apiVersion: 'tcqos.io/v1alpha1',
      kind: 'BandwidthPolicy',
      metadata: {
        name,
        namespace,
        uid: known?.metadata.uid ?? randomUUID(),
        resourceVersion: '',
        generation: (known?.metadata.generation ?? 0) + 1,
        creationTimestamp: known?.metadata.creationTimestamp ?? new Date().toISOString(),
      },
      spec,
      ...(known?.status ? { status: known.status } : {}),
    };
    this.changePolicy(known ? 'MODIFIED' : 'ADDED', policy);
  }

  /** Replaces the BandwidthPolicy's status, as another writer would (MODIFIED). */
  setPolicyStatus(namespace: string, name: string, status: Record<string, unknown>): void {
    const known = this.policies.get(`${namespace}/${name}`);
    if (!known) throw new Error(`fake apiserver: no BandwidthPolicy ${namespace}/${name}`);
    this.changePolicy('MODIFIED', { ...known, status });
  }

  deletePolicy(namespace: string, name: string): void {
    const known = this.policies.get(`${namespace}/${name}`);
    if (!known) throw new Error(`fake apiserver: no BandwidthPolicy ${namespace}/${name}`);
    this.changePolicy('DELETED', known);
  }

  /** The BandwidthPolicy as stored (status included). */
  policy(namespace: string, name: string): PolicyObject | undefined {
    return this.policies.get(`${namespace}/${name}`);
  }

  /** A change the agent does not care about (a status update): one MODIFIED event. */
  touchPod(namespace: string, name: string): void {
    const known = this.mustGet(namespace, name);
    this.change('MODIFIED', { ...known, status: { phase: known.status.phase } });
  }

  deletePod(namespace: string, name: string): void {
    this.change('DELETED', this.mustGet(namespace, name));
  }

  /**
   * Compacts the history: every resourceVersion handed out so far becomes too old to watch from.
   * Open watches get an ERROR event with a 410 Status and are closed (`tellOpenWatches`, the
   * default), or are just closed, so their clients find out when they watch again.
   */
  expireHistory(options: { tellOpenWatches?: boolean } = {}): void {
    this.resourceVersion += 1;
    this.compactedTo = this.resourceVersion;
    for (const watcher of [...this.watchers]) {
      if (options.tellOpenWatches ?? true) this.send(watcher, { type: 'ERROR', object: goneStatus(this.compactedTo) });
      this.endWatch(watcher);
    }
  }

  /** Ends every open watch normally, as the server does when a watch's timeout is up. */
  closeWatches(): void {
    for (const watcher of [...this.watchers]) this.endWatch(watcher);
  }

  /** A BOOKMARK with the current resourceVersion to every watch that allows them. */
  bookmark(): void {
    for (const watcher of this.watchers) {
      if (watcher.bookmarks) this.send(watcher, { type: 'BOOKMARK', object: { kind: 'Pod', apiVersion: 'v1', metadata: { resourceVersion: String(this.resourceVersion) } } });
    }
  }

  /** The next list or watch requests fail, one fault each, in order. */
  failNext(...faults: Fault[]): void {
    this.faults.push(...faults);
  }

  requestsTo(kind: 'list' | 'watch' | 'event' | 'tokenreview' | 'subjectaccessreview' | 'policy-list' | 'policy-watch' | 'policy-status'): RecordedRequest[] {
    return this.requests.filter((request) => {
      switch (kind) {
        case 'policy-list':
        case 'policy-watch':
          return request.path === POLICIES_PATH && (request.query['watch'] === 'true') === (kind === 'policy-watch');
        case 'policy-status':
          return request.method === 'PATCH' && POLICY_STATUS_PATH.test(request.path);
        case 'event':
          return request.method === 'POST' && request.path.endsWith('/events');
        case 'tokenreview':
          return request.path.endsWith('/tokenreviews');
        case 'subjectaccessreview':
          return request.path.endsWith('/subjectaccessreviews');
        default:
          return request.path === '/api/v1/pods' && (request.query['watch'] === 'true') === (kind === 'watch');
      }
    });
  }

  async close(): Promise<void> {
    this.closeWatches();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private mustGet(namespace: string, name: string): PodObject {
    const pod = this.pods.get(`${namespace}/${name}`);
    if (!pod) throw new Error(`fake apiserver: no pod ${namespace}/${name}`);
    return pod;
  }

  private change(type: EventType, pod: PodObject): void {
    this.resourceVersion += 1;
    const stamped: PodObject = { ...pod, metadata: { ...pod.metadata, resourceVersion: String(this.resourceVersion) } };
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
    if (type === 'DELETED') this.pods.delete(key);
    else this.pods.set(key, stamped);
    const change = { resourceVersion: this.resourceVersion, type, kind: 'pods' as const, pod: stamped };
    this.history.push(change);
    for (const watcher of this.watchers) {
      if (watcher.kind === 'pods' && matches(stamped, watcher.nodeName)) this.send(watcher, { type, object: stamped });
    }
  }

  private changePolicy(type: EventType, policy: PolicyObject): void {
    this.resourceVersion += 1;
    const stamped: PolicyObject = { ...policy, metadata: { ...policy.metadata, resourceVersion: String(this.resourceVersion) } };
    const key = `${policy.metadata.namespace}/${policy.metadata.name}`;
    if (type === 'DELETED') this.policies.delete(key);
    else this.policies.set(key, stamped);
    this.history.push({ resourceVersion: this.resourceVersion, type, kind: 'policies', pod: stamped });
    for (const watcher of this.watchers) if (watcher.kind === 'policies') this.send(watcher, { type, object: stamped });
  }

  /** PATCH .../status, JSON merge patch: refused with 409 when metadata.resourceVersion is not the stored one. */
  private patchPolicyStatus(namespace: string, name: string, request: IncomingMessage, response: ServerResponse): void {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const known = this.policies.get(`${namespace}/${name}`);
      if (!known) {
        reply(response, 404, status(404, 'NotFound', `bandwidthpolicies.tcqos.io "${name}" not found`));
        return;
      }
      if (request.headers['content-type'] !== 'application/merge-patch+json') {
        reply(response, 415, status(415, 'UnsupportedMediaType', `the fake apiserver takes merge patches only, not ${request.headers['content-type']}`));
        return;
      }
      const patch = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { metadata?: { resourceVersion?: string }; status?: unknown };
      const precondition = patch.metadata?.resourceVersion;
      if (precondition !== undefined && precondition !== known.metadata.resourceVersion) {
        this.statusConflicts++;
        reply(response, 409, status(409, 'Conflict', `Operation cannot be fulfilled on bandwidthpolicies.tcqos.io "${name}": the object has been modified; please apply your changes to the latest version and try again`));
        return;
      }
      this.statusWrites.push({ namespace, name, patch: patch as Record<string, unknown> });
      const merged = mergePatch(known.status ?? {}, patch.status ?? {}) as Record<string, unknown>;
      this.changePolicy('MODIFIED', { ...known, status: merged });
      reply(response, 200, this.policies.get(`${namespace}/${name}`)!);
    });
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    const url = new URL(request.url ?? '/', 'http://fake');
    const query = Object.fromEntries(url.searchParams.entries());
    const token = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
    this.requests.push({ method: request.method ?? '', path: url.pathname, query, ...(token ? { token } : {}), at: Date.now() - this.started });
    if (request.method === 'POST' && url.pathname === '/apis/authentication.k8s.io/v1/tokenreviews') {
      this.review(request, response, (body) => this.tokenReview(body));
      return;
    }
    if (request.method === 'POST' && url.pathname === '/apis/authorization.k8s.io/v1/subjectaccessreviews') {
      this.review(request, response, (body) => this.accessReview(body));
      return;
    }
    const eventsPath = /^\/api\/v1\/namespaces\/([^/]+)\/events$/.exec(url.pathname);
    if (request.method === 'POST' && eventsPath) {
      this.postEvent(eventsPath[1]!, request, response);
      return;
    }
    const statusPath = POLICY_STATUS_PATH.exec(url.pathname);
    if (request.method === 'PATCH' && statusPath && !this.withoutPolicyCrd) {
      this.patchPolicyStatus(decodeURIComponent(statusPath[1]!), decodeURIComponent(statusPath[2]!), request, response);
      return;
    }
    if (request.method === 'GET' && url.pathname === POLICIES_PATH && !this.withoutPolicyCrd) {
      if (query['watch'] === 'true') this.watch(query, 'policies', undefined, response);
      else reply(response, 200, { apiVersion: 'tcqos.io/v1alpha1', kind: 'BandwidthPolicyList', metadata: { resourceVersion: String(this.resourceVersion) }, items: [...this.policies.values()] });
      return;
    }
    if (request.method === 'GET' && url.pathname === '/api/v1/nodes' && this.nodes) {
      // metadata only, as a PartialObjectMetadataList answers
      reply(response, 200, { kind: 'NodeList', apiVersion: 'v1', metadata: { resourceVersion: String(this.resourceVersion) }, items: this.nodes.map((name) => ({ metadata: { name } })) });
      return;
    }
    if (request.method !== 'GET' || url.pathname !== '/api/v1/pods') {
      reply(response, 404, status(404, 'NotFound', `the fake apiserver does not serve ${request.method} ${url.pathname}`));
      return;
    }
    const fault = this.faults.shift();
    if (fault === 'reset') {
      request.socket.destroy();
      return;
    }
    if (fault) {
      reply(response, fault.status, status(fault.status, 'InternalError', `injected failure ${fault.status}`));
      return;
    }
    const selector = query['fieldSelector'];
    const nodeName = selector === undefined ? undefined : /^spec\.nodeName=(.*)$/.exec(selector)?.[1];
    if (selector !== undefined && nodeName === undefined) {
      reply(response, 400, status(400, 'BadRequest', `the fake apiserver only knows the fieldSelector spec.nodeName=X, not ${selector}`));
      return;
    }
    if (query['watch'] === 'true') this.watch(query, 'pods', nodeName, response);
    else this.list(nodeName, response);
  }

  private list(nodeName: string | undefined, response: ServerResponse): void {
    const items = [...this.pods.values()].filter((pod) => matches(pod, nodeName));
    reply(response, 200, { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: String(this.resourceVersion) }, items });
  }

  private watch(query: Record<string, string>, kind: Kind, nodeName: string | undefined, response: ServerResponse): void {
    const from = query['resourceVersion'];
    const since = from === undefined || from === '' || from === '0' ? undefined : Number(from);
    if (since !== undefined && since < this.compactedTo) {
      if (this.goneAs === 'status') {
        reply(response, 410, goneStatus(this.compactedTo));
      } else {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(`${JSON.stringify({ type: 'ERROR', object: goneStatus(this.compactedTo) })}\n`);
      }
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' });
    // like kube-apiserver: the headers go out at once, so the client knows the watch is open
    response.flushHeaders();
    const watcher: Watcher = { response, kind, nodeName, bookmarks: query['allowWatchBookmarks'] === 'true' };
    this.watchers.add(watcher);
    response.on('close', () => this.watchers.delete(watcher));
    if (since === undefined) {
      // no resourceVersion: the current state as ADDED events, then changes
      const objects = kind === 'pods' ? [...this.pods.values()].filter((pod) => matches(pod, nodeName)) : [...this.policies.values()];
      for (const object of objects) this.send(watcher, { type: 'ADDED', object });
    } else {
      for (const change of this.history) {
        if (change.resourceVersion > since && change.kind === kind && (kind === 'policies' || matches(change.pod as PodObject, nodeName))) this.send(watcher, { type: change.type, object: change.pod });
      }
    }
    const timeout = Number(query['timeoutSeconds']);
    if (timeout > 0 && !this.ignoreWatchTimeouts) {
      const timer = setTimeout(() => this.endWatch(watcher), timeout * 1000);
      response.on('close', () => clearTimeout(timer));
    }
  }

  private postEvent(namespace: string, request: IncomingMessage, response: ServerResponse): void {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as PostedEvent & { metadata: { generateName?: string; name?: string } };
      const name = body.metadata.name ?? `${body.metadata.generateName ?? 'event.'}${randomUUID().slice(0, 8)}`;
      if (this.events.some((known) => known.metadata.namespace === namespace && known.metadata.name === name)) {
        reply(response, 409, status(409, 'AlreadyExists', `events "${name}" already exists`));
        return;
      }
      const event = { ...body, metadata: { ...body.metadata, name, namespace } } as PostedEvent;
      this.events.push(event);
      setTimeout(() => reply(response, 201, { kind: 'Event', apiVersion: 'v1', ...event }), this.eventDelayMs);
    });
  }

  /** Answers a review: the request's body with its status filled in (201, as kube-apiserver does). */
  private review(request: IncomingMessage, response: ServerResponse, decide: (body: Record<string, unknown>) => object): void {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      reply(response, 201, { ...body, status: decide(body) });
    });
  }

  private tokenReview(body: Record<string, unknown>): object {
    const token = (body['spec'] as { token?: string } | undefined)?.token ?? '';
    const user = this.tokens.get(token);
    if (!user) return { authenticated: false, error: 'invalid bearer token' };
    return { authenticated: true, user: { username: user.username, uid: `uid-${user.username}`, groups: [...(user.groups ?? []), 'system:authenticated'] } };
  }

  private accessReview(body: Record<string, unknown>): object {
    const spec = (body['spec'] ?? {}) as { user?: string; groups?: string[]; nonResourceAttributes?: { path?: string; verb?: string } };
    const path = spec.nonResourceAttributes?.path ?? '';
    const verb = spec.nonResourceAttributes?.verb ?? '';
    const allowed = this.grants.has(`${spec.user ?? ''} ${verb} ${path}`);
    this.accessReviews.push({ user: spec.user ?? '', groups: spec.groups ?? [], path, verb, allowed });
    return allowed ? { allowed: true } : { allowed: false, reason: `no RBAC policy matched (${spec.user} ${verb} ${path})` };
  }

  private send(watcher: Watcher, event: object): void {
    watcher.response.write(`${JSON.stringify(event)}\n`);
  }

  private endWatch(watcher: Watcher): void {
    this.watchers.delete(watcher);
    watcher.response.end();
  }
}

/** RFC 7386: objects merge key by key, null deletes, anything else replaces. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const result: Record<string, unknown> = typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

function matches(pod: PodObject, nodeName: string | undefined): boolean {
  return nodeName === undefined || pod.spec.nodeName === nodeName;
}

function status(code: number, reason: string, message: string): object {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function goneStatus(current: number): object {
  return status(410, 'Expired', `too old resource version (current ${current})`);
}

function reply(response: ServerResponse, code: number, body: object): void {
  response.writeHead(code, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}
