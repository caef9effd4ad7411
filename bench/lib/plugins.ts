/**
 * The two shaping plugins, invoked directly as libcni invokes a chained plugin (CNI_* environment,
 * the network config with prevResult on stdin), from inside the runner namespace.
 */
import { run, type Ran } from '../../test/helpers/run.ts';
import { deviceOf } from '../../src/attachment/carry.ts';
import { envArgs, IFNAME, REFERENCE_BINARY, RUNNER, TCQOS_BINARY, type Attachment, type Bed } from './bed.ts';

export type PluginName = 'tcqos' | 'bandwidth';

export const BINARIES: Record<PluginName, string> = { tcqos: TCQOS_BINARY, bandwidth: REFERENCE_BINARY };

/** What containerd passes as the burst when a pod has the Kubernetes bandwidth annotations. */
export const CONTAINERD_BURST_BITS = 4294967295;

/** Burst used for static configs: one millisecond at the rate plus one frame (tcqos's own default). */
export function burstBits(rateBits: number): number {
  return (Math.ceil(rateBits / 8 / 1000) + 1514) * 8;
}

/** Shaping in both directions with the keys both plugins read. */
export interface Limits {
  readonly rateBits: number;
  /** 'static': ingressRate/egressRate + 1 ms bursts in the config; 'containerd': runtimeConfig.bandwidth with containerd's burst. */
  readonly mode: 'static' | 'containerd';
}

export function flatConfig(plugin: PluginName, att: Attachment, limits: Limits): Record<string, unknown> {
  const keys = {
    ingressRate: limits.rateBits,
    egressRate: limits.rateBits,
    ingressBurst: limits.mode === 'static' ? burstBits(limits.rateBits) : CONTAINERD_BURST_BITS,
    egressBurst: limits.mode === 'static' ? burstBits(limits.rateBits) : CONTAINERD_BURST_BITS,
  };
  const base = { cniVersion: '1.0.0', name: `tqb${att.network}`, type: plugin };
  return limits.mode === 'static'
    ? { ...base, ...keys, prevResult: att.prevResult }
    : { ...base, capabilities: { bandwidth: true }, runtimeConfig: { bandwidth: keys }, prevResult: att.prevResult };
}

/** A tcqos config in its own vocabulary (per-direction class trees). */
export function treeConfig(att: Attachment, direction: object): Record<string, unknown> {
  return { cniVersion: '1.0.0', name: `tqb${att.network}`, type: 'tcqos', egress: direction, ingress: direction, prevResult: att.prevResult };
}

export function pluginEnv(bed: Bed, command: string, att: Attachment): Record<string, string> {
  return bed.cniEnv({ CNI_COMMAND: command, CNI_CONTAINERID: att.containerId, CNI_NETNS: att.path, CNI_IFNAME: IFNAME, TCQOS_STATE_DIR: bed.stateDir });
}

export async function invoke(bed: Bed, plugin: PluginName, command: 'ADD' | 'DEL', att: Attachment, config: object): Promise<Ran> {
  return run('ip', ['netns', 'exec', RUNNER, 'env', '-i', ...envArgs(pluginEnv(bed, command, att)), BINARIES[plugin]], {
    input: JSON.stringify(config),
    timeoutMs: 60_000,
  });
}

/** Where a plugin's shaper for one direction sits, so its qdisc counters can be read. */
export interface Shaper {
  readonly netns: string;
  readonly dev: string;
}

export interface Shaped {
  readonly egress: Shaper;
  readonly ingress: Shaper;
}

export class PluginFailed extends Error {}

/** ADD; throws with the plugin's own error unless it succeeds. */
export async function shape(bed: Bed, plugin: PluginName, att: Attachment, config: object): Promise<Shaped> {
  const ran = await invoke(bed, plugin, 'ADD', att, config);
  if (ran.exitCode !== 0) throw new PluginFailed(`${plugin} ADD failed (${ran.exitCode}): ${ran.stdout.trim()} ${ran.stderr.trim()}`);
  if (plugin === 'tcqos') {
    // a veth pod is shaped at its host end, in the node's (here the runner's) namespace
    const [netns, devices] = att.hostVeth ? [RUNNER, deviceOf('host', att.hostVeth)] : [att.netns, deviceOf('pod', IFNAME)];
    return { egress: { netns, dev: devices('egress') }, ingress: { netns, dev: devices('ingress') } };
  }
  const result = JSON.parse(ran.stdout) as { interfaces: Array<{ name: string }> };
  const ifb = result.interfaces.find((i) => i.name.startsWith('bwp'))?.name ?? '';
  return { egress: { netns: RUNNER, dev: ifb }, ingress: { netns: RUNNER, dev: att.hostVeth ?? '' } };
}

/**
 * DEL, then (reference only) what its DEL leaves: its qdiscs on the host veth, without which the
 * next ADD on that veth fails with "file exists".
 */
export async function unshape(bed: Bed, plugin: PluginName, att: Attachment, config: object): Promise<void> {
  const ran = await invoke(bed, plugin, 'DEL', att, config);
  if (ran.exitCode !== 0) throw new PluginFailed(`${plugin} DEL failed (${ran.exitCode}): ${ran.stdout.trim()} ${ran.stderr.trim()}`);
  if (plugin === 'bandwidth') await clearReferenceLeftovers(att);
}

export async function clearReferenceLeftovers(att: Attachment): Promise<void> {
  if (!att.hostVeth) return;
  await run('tc', ['-n', RUNNER, 'qdisc', 'del', 'dev', att.hostVeth, 'root']);
  await run('tc', ['-n', RUNNER, 'qdisc', 'del', 'dev', att.hostVeth, 'ingress']);
}
