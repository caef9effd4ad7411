/**
 * The agent as the DaemonSet runs it: the built image under podman with the manifest's command,
 * environment, settings (the ConfigMap), security context (read-only root, only NET_ADMIN and
 * SYS_ADMIN, no privilege escalation, the runtime's default seccomp profile), volumes with their
 * read-only flags and mount propagation, its own PID namespace, and the pod's service account,
 * against the in-test API server over HTTPS with in-cluster credentials. Everything reads the
 * DaemonSet from deploy/tcqos.yaml, so the manifest and this test cannot drift apart.
 *
 * None of it touches this machine's network: a throwaway "node" namespace stands in for the node's
 * (hostNetwork): the container joins it, the API server runs in it (a child process driven over
 * stdin/stdout), and so do the plugin's ADDs and DELs. Shown: an annotation edit reaches the wire;
 * a netns created after the agent started is seen (HostToContainer propagation); the container
 * killed with SIGKILL while it holds an attachment's lock in the middle of an apply leaves nothing
 * that blocks the runtime's next DEL or ADD of that pod.
 */
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAll } from 'js-yaml';
import type { IDaemonSet } from 'kubernetes-models/apps/v1';
import type { IConfigMap, IContainer } from 'kubernetes-models/v1';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/agent/tls.ts';
import { SERVICE_ACCOUNT_DIR } from '../../src/agent/kubeconfig.ts';
import { classFromText } from '../../src/netns/parse.ts';
import { lockPath, uplinkLockPath } from '../../src/state/lock.ts';
import { NetnsChild } from '../helpers/child-rpc.ts';
import type { PodSpec, PostedEvent } from '../helpers/fake-apiserver.ts';
import { expectShaped, goodputMbit } from '../helpers/iperf.ts';
import { invoke, kubernetesPodCall } from '../helpers/plugin.ts';
import { Podman } from '../helpers/podman.ts';
import { must, run } from '../helpers/run.ts';
import { Testbed, type Pod } from '../helpers/testbed.ts';

const DEPLOY = fileURLToPath(new URL('../../deploy/tcqos.yaml', import.meta.url));
const FAKE_APISERVER = fileURLToPath(new URL('../helpers/fake-apiserver-child.ts', import.meta.url));
const IMAGE = `localhost/tcqos-test:tqimg-${process.pid}`;
const CONTAINER_NAME = `tqimg-agent-${process.pid}`;
const NETWORK = 'imgnet';
const UPLINK = 'upl0';
const SCRAPER = { token: 'prometheus-token', user: 'system:serviceaccount:monitoring:prometheus' };
const AGENT_TOKEN = 'tcqos-agent-token';
const policy = (rate: string) => JSON.stringify({ egress: { rate } });

const bed = new Testbed('tqimg', 112);
let podman: Podman;
let node: string;
let nodeName: string;
let hub: string;
let web: Pod;
let peer: Pod;
let late: Pod | undefined;
let stateDir: string;
let work: string;
let api: NetnsChild | undefined;
let started = false;

// ---------------------------------------------------------------------------------------------
// The DaemonSet, read from the manifest.

const documents = loadAll(readFileSync(DEPLOY, 'utf8')) as Array<{ kind: string; metadata: { name: string } }>;
const daemonSet = documents.find((doc) => doc.kind === 'DaemonSet') as unknown as IDaemonSet;
const configMap = documents.find((doc) => doc.kind === 'ConfigMap') as unknown as IConfigMap;
const podSpec = daemonSet.spec!.template.spec!;
const agentContainer = podSpec.containers.find((container) => container.name === 'agent')!;

/** The container's environment as the kubelet sets it: values, and spec.nodeName. */
function environment(container: IContainer): Record<string, string> {
  const env: Record<string, string> = {};
  for (const variable of container.env ?? []) {
    if (variable.value !== undefined) env[variable.name] = variable.value;
    else if (variable.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName') env[variable.name] = nodeName;
    else throw new Error(`the test does not know how to set ${variable.name}`);
  }
  return env;
}

/** Where this test puts each hostPath of the manifest: its own state dir for /run/tcqos; the netns dirs as they are. */
function hostPathFor(path: string): string {
  if (path === '/run/tcqos') return stateDir;
  if (path === '/run/netns' || path === '/var/run/netns') return path;
  throw new Error(`the test has no place for hostPath ${path}`);
}

/** `podman run` arguments that run the agent container as the kubelet would, inside the node namespace. */
function podmanRunArgs(): string[] {
  const security = agentContainer.securityContext ?? {};
  if (security.privileged) throw new Error('the agent container is privileged');
  const env = { ...environment(agentContainer), KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(apiPort) };
  const args = ['run', '-d', '--name', CONTAINER_NAME, '--network', `ns:/run/netns/${node}`, '--ulimit', 'nofile=16384:16384', '--ulimit', 'nproc=4096:4096'];
  // a pod's containers get their own PID namespace unless hostPID: podman's default
  if (podSpec.hostPID) args.push('--pid', 'host');
  // Kubernetes mounts no tmpfs over a read-only root
  if (security.readOnlyRootFilesystem) args.push('--read-only', '--read-only-tmpfs=false');
  if (security.allowPrivilegeEscalation === false) args.push('--security-opt', 'no-new-privileges');
  const seccomp = security.seccompProfile?.type ?? podSpec.securityContext?.seccompProfile?.type;
  // RuntimeDefault is podman's own default profile; anything else would be passed on here
  if (seccomp !== 'RuntimeDefault') args.push('--security-opt', 'seccomp=unconfined');
  for (const capability of security.capabilities?.drop ?? []) args.push('--cap-drop', capability);
  for (const capability of security.capabilities?.add ?? []) args.push('--cap-add', capability);
  for (const [name, value] of Object.entries(env)) args.push('--env', `${name}=${value}`);
  for (const mount of agentContainer.volumeMounts ?? []) {
    const volume = podSpec.volumes!.find((candidate) => candidate.name === mount.name)!;
    let source: string;
    if (volume.hostPath) source = hostPathFor(volume.hostPath.path);
    else if (volume.configMap) {
      source = join(work, `configmap-${volume.name}`);
      mkdirSync(source, { recursive: true });
      for (const [key, value] of Object.entries(configMap.data ?? {})) writeFileSync(join(source, key), value);
    } else throw new Error(`the test does not know volume ${volume.name}`);
    const propagation = { HostToContainer: 'rslave', Bidirectional: 'rshared', None: 'rprivate' }[mount.mountPropagation ?? 'None'];
    args.push('--volume', `${source}:${mount.mountPath}:${mount.readOnly ? 'ro' : 'rw'},${propagation}`);
  }
  // the service account's token, CA and namespace, as the kubelet projects them
  args.push('--volume', `${join(work, 'serviceaccount')}:${SERVICE_ACCOUNT_DIR}:ro`);
  const [entrypoint, ...rest] = agentContainer.command!;
  args.push('--entrypoint', entrypoint!, IMAGE, ...rest.map((arg) => arg.replace(/\$\((\w+)\)/g, (_, name: string) => env[name as keyof typeof env] ?? '')));
  return args;
}

let apiPort = 0;

// ---------------------------------------------------------------------------------------------
// Looking at the agent from the node namespace.

/** GET https://127.0.0.1:PORT/PATH from inside the node namespace (curl: the agent's certificate is self-signed). */
async function agentGet(path: string, token?: string): Promise<{ status: number; text: string }> {
  const port = Number(agentContainer.command![agentContainer.command!.indexOf('--listen') + 1]!.split(':').at(-1));
  const ran = await run('ip', [
    'netns', 'exec', node, 'curl', '-sk', '--max-time', '5', '-w', '\n%{http_code}',
    ...(token ? ['-H', `Authorization: Bearer ${token}`] : []),
    `https://127.0.0.1:${port}${path}`,
  ]);
  const lines = ran.stdout.split('\n');
  return { status: Number(lines.pop()), text: lines.join('\n') };
}

/** What the kubelet's readiness probe gets: the manifest's httpGet, scheme and path. */
async function probe(): Promise<number> {
  const httpGet = agentContainer.readinessProbe!.httpGet!;
  expect(httpGet.scheme).toBe('HTTPS');
  return (await agentGet(httpGet.path!)).status;
}

async function logs(): Promise<string> {
  const ran = await podman.run(['logs', CONTAINER_NAME]);
  return `${ran.stdout}${ran.stderr}`;
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, why: () => string | Promise<string>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(await why());
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function egressRootRate(pod: Pod): Promise<number | undefined> {
  const text = await must('ip', ['netns', 'exec', pod.netns, 'tc', 'class', 'show', 'dev', 'eth0']);
  const root = text.split('\n').find((line) => line.startsWith('class htb ') && line.includes(' root '));
  return root === undefined ? undefined : classFromText(root).rate;
}

// ---------------------------------------------------------------------------------------------
// The runtime's side: ADD and DEL from the node namespace, into the state dir the agent mounts.

const podIdentity = (name: string) => ({ namespace: 'shop', name, uid: `00000000-0000-4000-8000-${name.padStart(12, '0')}` });

function cni(command: 'ADD' | 'DEL', pod: Pod, name: string, rate = '40mbit'): ReturnType<typeof invoke> {
  const annotations = { 'tcqos.io/policy': policy(rate) };
  const entry = { cniVersion: '1.0.0', name: NETWORK, type: 'tcqos', egress: { rate: '100mbit' }, uplink: { name: UPLINK, capacity: '1gbit' }, capabilities: { 'io.kubernetes.cri.pod-annotations': true } };
  return invoke(node, kubernetesPodCall({ command, containerId: `tqimg-${name}`, pod: podIdentity(name), netns: pod.path, entry, annotations, stateDir }));
}

async function setPod(name: string, rate: string): Promise<void> {
  const spec: PodSpec = { ...podIdentity(name), nodeName, annotations: { 'tcqos.io/policy': policy(rate) } };
  await api!.call('setPod', spec);
}

beforeAll(async () => {
  await bed.removeLeftovers();
  podman = new Podman('tqimg');
  await podman.run(['rm', '--force', CONTAINER_NAME]);
  await podman.buildImage(IMAGE);
  work = mkdtempSync(join(tmpdir(), 'tqimg-'));
  stateDir = join(work, 'run-tcqos');
  mkdirSync(stateDir, { mode: 0o700 });
  node = await bed.netns('node');
  nodeName = node;
  hub = await bed.macvlanHub();
  web = await bed.macvlanPod(hub, 'web', 2);
  peer = await bed.macvlanPod(hub, 'peer', 3);
  const added = await cni('ADD', web, 'web');
  expect(added.exitCode, `${added.stdout}${added.stderr}`).toBe(0);

  // the API server inside the node namespace, over HTTPS, its certificate the service account's CA
  const serving = selfSignedCertificate('kube-apiserver', ['127.0.0.1', 'localhost', 'kubernetes.default.svc']);
  api = await NetnsChild.start(node, FAKE_APISERVER, [JSON.stringify({ tls: serving })]);
  apiPort = (api.ready as { port: number }).port;
  await api.call('addToken', SCRAPER.token, { username: SCRAPER.user });
  await api.call('grant', SCRAPER.user, 'get', '/metrics');
  await api.call('addToken', AGENT_TOKEN, { username: 'system:serviceaccount:tcqos:tcqos-agent' });
  await setPod('web', '40mbit');
  mkdirSync(join(work, 'serviceaccount'));
  writeFileSync(join(work, 'serviceaccount', 'token'), AGENT_TOKEN);
  writeFileSync(join(work, 'serviceaccount', 'ca.crt'), serving.cert);
  writeFileSync(join(work, 'serviceaccount', 'namespace'), 'tcqos');

  const ran = await podman.run(podmanRunArgs());
  if (ran.exitCode !== 0) throw new Error(`podman run failed: ${ran.stderr}`);
  started = true;
  await until(async () => (await probe()) === 200, 20_000, async () => `the agent is not ready:\n${await logs()}`);
}, 360_000);

afterAll(async () => {
  if (started) await podman.run(['rm', '--force', '--time', '0', CONTAINER_NAME]);
  if (node) {
    await cni('DEL', web, 'web');
    if (late) await cni('DEL', late, 'late');
  }
  await api?.stop();
  await bed.destroy();
  await podman?.remove(IMAGE);
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the agent in its image, run as the DaemonSet runs it', () => {
  it('runs in its own PID namespace with a read-only root, only NET_ADMIN and SYS_ADMIN, no new privileges, a seccomp filter; /metrics for a granted token only', async () => {
    const inspected = await podman.run(['inspect', '--format', '{{.State.Pid}}', CONTAINER_NAME]);
    const pid = Number(inspected.stdout.trim());
    expect(pid).toBeGreaterThan(0);
    expect(readlinkSync(`/proc/${pid}/ns/pid`)).not.toBe(readlinkSync('/proc/self/ns/pid'));
    // the node namespace it was given (hostNetwork), not this machine's
    expect(readlinkSync(`/proc/${pid}/ns/net`)).toBe(`net:[${statSync(`/run/netns/${node}`).ino}]`);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(status)?.[1];
    // CAP_NET_ADMIN (12) and CAP_SYS_ADMIN (21), nothing else
    expect(BigInt(`0x${field('CapEff')}`)).toBe((1n << 12n) | (1n << 21n));
    expect(field('NoNewPrivs')).toBe('1');
    expect(field('Seccomp')).toBe('2');
    const rootMount = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').find((line) => line.split(' ')[4] === '/');
    expect(rootMount?.split(' ')[5]?.split(',')).toContain('ro');
    expect(await logs()).toContain('"credentials":"the pod\'s service account');

    expect(await probe()).toBe(200);
    expect((await agentGet('/metrics')).status).toBe(401);
    await until(async () => (await agentGet('/metrics', SCRAPER.token)).text.includes('pod="web"'), 15_000, async () => `no counters of web:\n${await logs()}`);
    const scraped = await agentGet('/metrics', SCRAPER.token);
    expect(scraped.status).toBe(200);
    expect(scraped.text).toMatch(/^tcqos_class_bytes_total\{[^}]*pod="web"[^}]*\} \d+$/m);
  });

  it('applies an annotation edit: it reaches the wire', async () => {
    await setPod('web', '10mbit');
    await until(async () => (await egressRootRate(web)) === 10_000_000, 15_000, async () => `not applied:\n${await logs()}`);
    await expectShaped(() => goodputMbit({ podNetns: web.netns, peerNetns: peer.netns, peerAddress: peer.ipv4, port: 5501, direction: 'egress' }), ['egress after the edit', 10]);
  });

  it('sees a netns created after it started (the netns directories mounted HostToContainer)', async () => {
    late = await bed.macvlanPod(hub, 'late', 4);
    const added = await cni('ADD', late, 'late');
    expect(added.exitCode, `${added.stdout}${added.stderr}`).toBe(0);
    await setPod('late', '40mbit');
    await setPod('late', '15mbit');
    await until(async () => (await egressRootRate(late!)) === 15_000_000, 15_000, async () => `the late pod was not shaped:\n${await logs()}`);
  });

  it('killed with SIGKILL while it holds a pod\'s lock in the middle of an apply, blocks neither the next DEL nor the next ADD of that pod', async () => {
    const attachmentLock = lockPath(stateDir, web.path, 'eth0');
    const uplinkLock = uplinkLockPath(stateDir, UPLINK);
    // admission waits on the uplink's lock while the attachment's is held: hold the uplink's here
    const holder = execa('flock', [uplinkLock, 'sleep', '120'], { reject: false, detached: true });
    let freedMs = 0;
    const isHeld = async (path: string) => (await run('flock', ['--nonblock', path, 'true'])).exitCode !== 0;
    try {
      await until(() => isHeld(uplinkLock), 5000, () => 'the test could not take the uplink lock');
      await setPod('web', '20mbit');
      await until(() => isHeld(attachmentLock), 15_000, async () => `the agent never took the attachment's lock:\n${await logs()}`);
      const killed = await podman.run(['kill', '--signal', 'KILL', CONTAINER_NAME]);
      expect(killed.exitCode, killed.stderr).toBe(0);
      const killedAt = Date.now();
      await until(async () => !(await isHeld(attachmentLock)), 5000, () => "the dead agent's lock is still held");
      freedMs = Date.now() - killedAt;
      expect(freedMs).toBeLessThan(2000);
    } finally {
      process.kill(-holder.pid!, 'SIGKILL');
      await holder;
    }
    const delStarted = Date.now();
    const deleted = await cni('DEL', web, 'web');
    const delMs = Date.now() - delStarted;
    expect(deleted.exitCode, `${deleted.stdout}${deleted.stderr}`).toBe(0);
    expect(await egressRootRate(web)).toBeUndefined();
    const addStarted = Date.now();
    const added = await cni('ADD', web, 'web', '40mbit');
    const addMs = Date.now() - addStarted;
    expect(added.exitCode, `${added.stdout}${added.stderr}`).toBe(0);
    expect(await egressRootRate(web)).toBe(40_000_000);
    console.info(`after SIGKILL mid-apply: the attachment's lock free ${freedMs} ms after the kill; DEL ${delMs} ms, ADD ${addMs} ms`);
    expect(delMs).toBeLessThan(5000);
  });

  it('posted no Event: nothing was refused and no drift had to be healed', async () => {
    expect(await api!.get<PostedEvent[]>('events')).toEqual([]);
  });
});
