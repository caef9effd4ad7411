/**
 * The manifests in deploy/ against the Kubernetes schemas (kubernetes-models), against each other
 * (names they refer to), and against the binary: every container command line must parse with the
 * flags of the subcommand it names, exactly as `tcqos` would parse it; the agent's ClusterRole
 * grants exactly the API calls the agent makes (it is run against the fake API server, every call
 * site exercised, and its requests turned into RBAC rules); the agent runs hardened.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { dumpYaml, loadYaml } from '@kubernetes/client-node';
import { load, loadAll } from 'js-yaml';
import { DaemonSet, type IDaemonSet } from 'kubernetes-models/apps/v1';
import { ClusterRole, ClusterRoleBinding, type IClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1';
import { ConfigMap, Namespace, ServiceAccount, type IConfigMap } from 'kubernetes-models/v1';
import type { IContainer, IVolume } from 'kubernetes-models/v1';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { startAgent } from '../../src/agent/agent.ts';
import type { AgentDeps } from '../../src/agent/deps.ts';
import { kubeApi } from '../../src/agent/kube.ts';
import { loadKubeConfig } from '../../src/agent/kubeconfig.ts';
import { resolveSettings } from '../../src/agent/settings.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { SUBCOMMANDS } from '../../src/cli/subcommands.ts';
import { agentGet } from '../helpers/agent-client.ts';
import { FakeApiServer, type RecordedRequest } from '../helpers/fake-apiserver.ts';

const DEPLOY = fileURLToPath(new URL('../../deploy/', import.meta.url));
/** Where the image puts the binary (scripts/build-image.sh, deploy/Containerfile). */
const ENTRYPOINT = '/usr/bin/tcqos';
const { version: VERSION } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

interface Manifest {
  readonly file: string;
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string };
  readonly [key: string]: unknown;
}

/** The files `kubectl apply -f deploy/` reads: *.yaml, *.yml and *.json directly in deploy/. */
const manifests: Manifest[] = readdirSync(DEPLOY)
  .filter((name) => /\.(ya?ml|json)$/.test(name))
  .sort()
  .flatMap((file) => loadAll(readFileSync(join(DEPLOY, file), 'utf8')).filter((doc) => doc !== null).map((doc) => ({ ...(doc as object), file }) as Manifest));

const MODELS: Readonly<Record<string, { new (data: never): { validate(): void } }>> = {
  'v1/Namespace': Namespace,
  'v1/ServiceAccount': ServiceAccount,
  'v1/ConfigMap': ConfigMap,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'apps/v1/DaemonSet': DaemonSet,
  'apiextensions.k8s.io/v1/CustomResourceDefinition': CustomResourceDefinition,
};

function withoutFile(manifest: Manifest): Record<string, unknown> {
  const { file: _file, ...object } = manifest;
  return object;
}

function only<T>(kind: string, name?: string): T & Manifest {
  const found = manifests.filter((manifest) => manifest.kind === kind && (name === undefined || manifest.metadata.name === name));
  expect(found, kind).toHaveLength(1);
  return found[0] as T & Manifest;
}

interface Rule {
  readonly apiGroups?: string[];
  readonly resources?: string[];
  readonly nonResourceURLs?: string[];
  readonly verbs: string[];
}

/** The rules of a ClusterRole as "group/resource verb" lines (group empty for the core group). */
function grants(rules: readonly Rule[]): string[] {
  return rules.flatMap((rule) => (rule.apiGroups ?? []).flatMap((group) => (rule.resources ?? []).flatMap((resource) => rule.verbs.map((verb) => `${group}/${resource} ${verb}`)))).sort();
}

/**
 * The RBAC verb a request to the API server needs, as "group/resource verb": /api/v1/... is the
 * core group, /apis/GROUP/VERSION/... a named one; GET of a collection is list (watch with
 * ?watch=true), of one object get; POST create, PUT update, PATCH patch, DELETE delete.
 */
function rbacOf(request: RecordedRequest): string {
  const match = /^\/(?:api\/v1|apis\/([^/]+)\/[^/]+)(?:\/namespaces\/[^/]+)?\/([^/]+)(\/[^/]+)?(\/[^/]+)?$/.exec(request.path);
  if (!match) throw new Error(`not a resource path: ${request.method} ${request.path}`);
  const [, group = '', plural, name, subresource] = match;
  // a subresource is granted as "resource/subresource" (bandwidthpolicies/status)
  const resource = subresource ? `${plural}${subresource}` : plural;
  const verb =
    request.method === 'GET' ? (name ? 'get' : request.query['watch'] === 'true' ? 'watch' : 'list') : ({ POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' } as Record<string, string>)[request.method];
  if (!verb) throw new Error(`no RBAC verb for ${request.method} ${request.path}`);
  return `${group}/${resource} ${verb}`;
}

/**
 * Runs the agent with the ConfigMap's settings against the fake API server through every call it
 * can make (list and watch pods; an Event for an invalid annotation, a healed drift and a privileged
 * pod; TokenReview and SubjectAccessReview for a scrape) and returns what it asked, as RBAC grants.
 */
async function callsOfTheAgent(settingsJson: string): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'tcqos-manifests-'));
  const fake = await FakeApiServer.start();
  try {
    writeFileSyncJson(join(dir, 'agent.json'), { ...(JSON.parse(settingsJson) as object), listen: '127.0.0.1:0', stateDir: dir, logLevel: 'silent', resyncSeconds: 0.2, metricsRefreshSeconds: 0.2 });
    fake.writeKubeconfig(join(dir, 'kubeconfig'));
    fake.addToken('scraper', { username: 'prometheus' });
    fake.grant('prometheus', 'get', '/metrics');
    fake.setPod({ namespace: 'shop', name: 'web', nodeName: 'n', annotations: { 'tcqos.io/policy': 'not json' }, containers: [{ name: 'app', securityContext: { privileged: true } }] });
    // a policy selecting the pod (its node's status entry is written) and one the agent refuses (an Event on it)
    fake.setPolicy('shop', 'web', { podSelector: {}, egress: { rate: '10mbit' } });
    fake.setPolicy('shop', 'broken', { podSelector: {}, egress: { rate: 'fast' } });
    // an entry of a node the cluster no longer has: the agent lists the nodes to drop it
    fake.setPolicyStatus('shop', 'web', { nodes: [{ node: 'deleted', observedGeneration: 1, selectedPods: 1, shapedPods: 1, updatedAt: '2026-01-01T00:00:00Z' }] });
    fake.nodes = ['n'];
    let drifted = true;
    const deps: AgentDeps = {
      listAttachments: () => [{ containerId: 'c', ifname: 'eth0', network: 'net', pod: { namespace: 'shop', name: 'web' }, site: 'pod' }],
      dropGone: async () => [],
      applyPodInputs: async () => {
        throw new ConfigError('', 'is not JSON', 'annotation tcqos.io/policy');
      },
      keepInForce: async () => {
        const changed = drifted;
        drifted = false;
        return { changed, policyChanged: false, commands: changed ? ['class add dev eth0 classid 7c05:10'] : [] };
      },
      runtimeFromAnnotations: () => undefined,
      readStats: async () => ({ stats: [], unreadable: [] }),
    };
    const settings = resolveSettings({ settings: join(dir, 'agent.json'), node: 'n' }, {});
    const { config, source } = loadKubeConfig(join(dir, 'kubeconfig'), {});
    const agent = await startAgent(settings, kubeApi(config, source, 'n'), deps, { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined });
    try {
      for (let i = 0; i < 100 && (fake.events.length < 4 || !fake.statusWrites.length); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(fake.events.map((event) => `${event.involvedObject.kind} ${event.reason}`).sort()).toEqual([
        'BandwidthPolicy TcqosPolicyInvalid',
        'Pod TcqosDriftHealed',
        'Pod TcqosPolicyInvalid',
        'Pod TcqosShapingBypassable',
      ]);
      expect(fake.statusWrites.map((write) => write.name)).toContain('web');
      expect((fake.policy('shop', 'web')!.status!['nodes'] as Array<{ node: string }>).map((entry) => entry.node), "the deleted node's entry dropped").toEqual(['n']);
      const scrape = await agentGet({ scheme: agent.scheme, host: '127.0.0.1', port: agent.address.port }, '/metrics', { token: 'scraper' });
      expect(scrape.status).toBe(200);
    } finally {
      await agent.stop();
    }
    return [...new Set(fake.requests.map(rbacOf))].sort();
  } finally {
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function writeFileSyncJson(path: string, value: unknown): void {
  writeFileSync(path, JSON.stringify(value));
}

/**
 * Fields the Kubernetes API does not define. kubernetes-models' validation ignores them; the
 * official client's typed round trip drops them, so what it loses is what a typo would be.
 */
function unknownFields(raw: unknown, known: unknown, path: string): string[] {
  if (Array.isArray(raw)) return raw.flatMap((item, index) => unknownFields(item, (known as unknown[] | undefined)?.[index], `${path}[${index}]`));
  if (typeof raw !== 'object' || raw === null) return [];
  const knownObject = (known ?? {}) as Record<string, unknown>;
  return Object.entries(raw).flatMap(([key, value]) =>
    key in knownObject ? unknownFields(value, knownObject[key], `${path}.${key}`) : [`${path}.${key}`],
  );
}

const daemonSet = () => only<IDaemonSet>('DaemonSet');
const podSpec = () => daemonSet().spec!.template.spec!;
const containers = () => [...(podSpec().initContainers ?? []), ...podSpec().containers];

function volumeAt(container: IContainer, path: string): IVolume {
  const mount = container.volumeMounts?.find((candidate) => path === candidate.mountPath || path.startsWith(`${candidate.mountPath}/`));
  expect(mount, `${container.name}: ${path} is on no volumeMount`).toBeDefined();
  const volume = podSpec().volumes?.find((candidate) => candidate.name === mount!.name);
  expect(volume, `${container.name}: no volume ${mount!.name}`).toBeDefined();
  return volume!;
}

describe('deploy/ manifests', () => {
  it('are the kinds tcqos needs, each valid against its Kubernetes schema', () => {
    expect(manifests.map((manifest) => manifest.kind).sort()).toEqual(['ClusterRole', 'ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'CustomResourceDefinition', 'DaemonSet', 'Namespace', 'ServiceAccount']);
    for (const manifest of manifests) {
      const Model = MODELS[`${manifest.apiVersion}/${manifest.kind}`];
      expect(Model, `${manifest.file}: no model for ${manifest.apiVersion} ${manifest.kind}`).toBeDefined();
      expect(() => new Model!(withoutFile(manifest) as never).validate(), `${manifest.file}: ${manifest.kind} ${manifest.metadata.name}`).not.toThrow();
    }
  });

  it('use no field the Kubernetes API does not define', () => {
    for (const manifest of manifests) {
      const object = withoutFile(manifest);
      const typed = load(dumpYaml(loadYaml(JSON.stringify(object))));
      expect(unknownFields(object, typed, `${manifest.kind}/${manifest.metadata.name}`)).toEqual([]);
    }
  });

  it('create the namespace before anything in it, and refer only to objects they define', () => {
    const namespace = only<object>('Namespace').metadata.name;
    const clusterScoped = ['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition'];
    const namespaced = manifests.filter((manifest) => !clusterScoped.includes(manifest.kind));
    for (const manifest of namespaced) expect(manifest.metadata.namespace, `${manifest.kind} ${manifest.metadata.name}`).toBe(namespace);
    // kubectl applies the files by name, each file's documents in order
    const namespaceAt = manifests.findIndex((manifest) => manifest.kind === 'Namespace');
    for (const manifest of namespaced) expect(manifests.indexOf(manifest), `${manifest.kind} ${manifest.metadata.name}`).toBeGreaterThan(namespaceAt);

    const binding = only<IClusterRoleBinding>('ClusterRoleBinding');
    expect(binding.roleRef).toMatchObject({ kind: 'ClusterRole', name: 'tcqos-agent' });
    expect(manifests.filter((manifest) => manifest.kind === 'ClusterRole').map((manifest) => manifest.metadata.name).sort()).toEqual(['tcqos-agent', 'tcqos-metrics-reader']);
    const account = only<object>('ServiceAccount').metadata;
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: account.name, namespace }]);
    expect(podSpec().serviceAccountName).toBe(account.name);

    const configMap = only<IConfigMap>('ConfigMap');
    const configMapVolumes = (podSpec().volumes ?? []).filter((volume) => volume.configMap);
    for (const volume of configMapVolumes) expect(volume.configMap?.name).toBe(configMap.metadata.name);
    for (const container of containers()) {
      for (const mount of container.volumeMounts ?? []) expect(podSpec().volumes?.map((volume) => volume.name), container.name).toContain(mount.name);
    }
  });

  it('grant the agent exactly the API calls it makes, nothing more', { timeout: 20_000 }, async () => {
    const rules = only<{ rules: Rule[] }>('ClusterRole', 'tcqos-agent').rules;
    expect(rules.filter((rule) => rule.nonResourceURLs || rule.verbs.includes('*') || rule.resources?.includes('*'))).toEqual([]);
    const data = only<IConfigMap>('ConfigMap').data ?? {};
    const called = await callsOfTheAgent(data['agent.json']!);
    expect(called).toEqual([
      '/events create',
      '/nodes list',
      '/pods list',
      '/pods watch',
      'authentication.k8s.io/tokenreviews create',
      'authorization.k8s.io/subjectaccessreviews create',
      'tcqos.io/bandwidthpolicies list',
      'tcqos.io/bandwidthpolicies watch',
      'tcqos.io/bandwidthpolicies/status patch',
    ]);
    expect(grants(rules)).toEqual(called);
  });

  it('let a scraper be granted GET /metrics and nothing else', () => {
    expect(only<{ rules: Rule[] }>('ClusterRole', 'tcqos-metrics-reader').rules).toEqual([{ nonResourceURLs: ['/metrics'], verbs: ['get'] }]);
  });

  it('run the agent hardened: RuntimeDefault seccomp, no privilege, read-only root, only NET_ADMIN and SYS_ADMIN, netns mounts read-only, HTTPS probes', () => {
    const agent = containers()[1]!;
    expect(podSpec().securityContext?.seccompProfile).toEqual({ type: 'RuntimeDefault' });
    expect(podSpec().hostPID ?? false).toBe(false);
    expect(agent.securityContext).toMatchObject({ privileged: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    for (const path of ['/run/netns', '/var/run/netns']) expect(agent.volumeMounts?.find((mount) => mount.mountPath === path)?.readOnly, path).toBe(true);
    expect(agent.volumeMounts?.find((mount) => mount.mountPath === '/run/tcqos')?.readOnly ?? false).toBe(false);
    for (const probe of [agent.readinessProbe, agent.livenessProbe]) expect(probe?.httpGet?.scheme).toBe('HTTPS');
    const settings = JSON.parse(only<IConfigMap>('ConfigMap').data!['agent.json']!) as { metricsAuth?: string };
    expect(settings.metricsAuth ?? 'kubernetes').toBe('kubernetes');
  });

  it("run the image's binary at this version", () => {
    for (const container of containers()) {
      expect(container.image, container.name).toBe(`localhost/tcqos:${VERSION}`);
      expect(container.command?.[0], container.name).toBe(ENTRYPOINT);
    }
    expect(readFileSync(join(DEPLOY, 'Containerfile'), 'utf8')).toContain(`ENTRYPOINT ["${ENTRYPOINT}"]`);
  });

  it('give each container a command line the binary accepts: a real subcommand and its flags', async () => {
    const commandLines = containers().map((container) => [container.name, container.command?.slice(1).join(' ')]);
    expect(commandLines).toEqual([
      ['install', expect.stringMatching(/^install /)],
      ['agent', expect.stringMatching(/^agent /)],
    ]);
    for (const container of containers()) {
      const [, name, ...args] = container.command ?? [];
      const entry = SUBCOMMANDS.find((candidate) => candidate.name === name);
      expect(entry, `${container.name}: tcqos has no subcommand ${JSON.stringify(name)}`).toBeDefined();
      const command = await entry!.load();
      // $(VAR) is expanded by the kubelet only when the container defines VAR; otherwise it stays literal
      for (const reference of args.join(' ').matchAll(/\$\((\w+)\)/g)) {
        expect(container.env?.map((variable) => variable.name), `${container.name}: $(${reference[1]})`).toContain(reference[1]);
      }
      let parsed;
      try {
        parsed = parseArgs({ args, options: command.options, strict: true, allowPositionals: command.allowPositionals ?? false });
      } catch (error) {
        throw new Error(`${container.name}: "tcqos ${name} ${args.join(' ')}" is refused by the binary: ${(error as Error).message}`);
      }
      // a path the command reads or writes must be inside the container (on a volume), not in the image
      for (const value of Object.values(parsed.values).flat()) {
        if (typeof value === 'string' && value.startsWith('/')) volumeAt(container, value);
      }
    }
  });

  it("install into the host's CNI dirs and let the agent read its settings from the ConfigMap", () => {
    const [install, agent] = containers();
    const flag = (container: IContainer | undefined, name: string) => container?.command?.[container.command.indexOf(`--${name}`) + 1] ?? '';
    expect(volumeAt(install!, flag(install, 'bin-dir')).hostPath?.path).toBe('/opt/cni/bin');
    expect(volumeAt(install!, flag(install, 'conf-dir')).hostPath?.path).toBe('/etc/cni/net.d');

    const settings = flag(agent, 'settings');
    const volume = volumeAt(agent!, settings);
    const mount = agent!.volumeMounts!.find((candidate) => candidate.name === volume.name)!;
    const key = settings.slice(mount.mountPath.length + 1);
    const data = only<IConfigMap>('ConfigMap').data ?? {};
    expect(Object.keys(data)).toContain(key);
    expect(() => JSON.parse(data[key]!) as unknown).not.toThrow();

    const port = Number(flag(agent, 'listen').split(':').at(-1));
    expect(agent!.ports?.map((candidate) => candidate.containerPort)).toEqual([port]);
    for (const probe of [agent!.readinessProbe, agent!.livenessProbe]) expect(probe?.httpGet?.path).toBe('/healthz');
  });

  it('mount the netns directories so that namespaces created later show up in the agent', () => {
    const agent = containers()[1]!;
    for (const path of ['/run/netns', '/var/run/netns']) {
      const mount = agent.volumeMounts?.find((candidate) => candidate.mountPath === path);
      expect(mount?.mountPropagation, path).toBe('HostToContainer');
      expect(volumeAt(agent, path).hostPath?.path).toBe(path);
    }
    expect(volumeAt(agent, '/run/tcqos').hostPath?.path).toBe('/run/tcqos');
    expect(podSpec().hostNetwork).toBe(true);
    expect(agent.securityContext?.privileged).toBe(false);
    expect(agent.securityContext?.capabilities?.add?.slice().sort()).toEqual(['NET_ADMIN', 'SYS_ADMIN']);
    expect(agent.env).toContainEqual({ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } });
  });
});
