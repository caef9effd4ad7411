/**
 * From a CNI invocation to what the use cases take: the policy inputs (the admin's entry, the
 * runtime's bandwidth values, the pod's annotations), the pod's identity, the registry, a logger.
 */
import { CniError, ErrorCode } from '../cni/errors.ts';
import type { CommandContext } from '../cni/skel.ts';
import { derivePolicy } from '../config/derive.ts';
import { ConfigError } from '../config/errors.ts';
import { shapingAnnotations } from '../config/kubernetes-bandwidth.ts';
import type { BandwidthPolicyInput, DerivedPolicy, PolicyInputs, Settings } from '../config/policy.ts';
import { PolicyEntries } from '../policy/entries.ts';
import { resolveForNetwork } from '../policy/resolve.ts';
import { POD_ANNOTATIONS_KEY } from '../config/schema.ts';
import { createLogger, type Logger } from '../log.ts';
import type { HostEnd, PodIdentity } from '../state/record.ts';
import { findHostEnd } from '../attachment/site.ts';
import { hostInterfaces } from '../cni/prev-result.ts';
import { NetnsSession, ownNetnsIdentity, withSession, type SessionOptions } from '../netns/session.ts';
import { Registry, stateDirFrom } from '../state/registry.ts';

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The three inputs, apart: what a record keeps and what `tcqos update` and the agent later replace. */
export function policyInputs(context: CommandContext): Required<Pick<PolicyInputs, 'config'>> & PolicyInputs {
  const { prevResult: _prevResult, runtimeConfig, ...config } = context.config;
  const runtime = isObject(runtimeConfig) && isObject(runtimeConfig['bandwidth']) ? runtimeConfig['bandwidth'] : undefined;
  const annotations = isObject(runtimeConfig) && isObject(runtimeConfig[POD_ANNOTATIONS_KEY]) ? runtimeConfig[POD_ANNOTATIONS_KEY] : undefined;
  return { config, ...(runtime ? { runtime } : {}), ...(annotations ? { annotations: annotations as Record<string, string> } : {}) };
}

/** The annotations a record keeps: the ones that set shaping (tcqos.io/policy*, kubernetes.io/*-bandwidth). */
export function keptAnnotations(inputs: PolicyInputs): Record<string, string> | undefined {
  return inputs.annotations && shapingAnnotations(inputs.annotations);
}

/** The policy the invocation asks for; an invalid configuration or annotation is CNI error 7. */
export async function derive(context: CommandContext): Promise<DerivedPolicy> {
  try {
    return await derivePolicy({ config: context.config });
  } catch (error) {
    if (error instanceof ConfigError) throw new CniError(ErrorCode.invalidConfig, `invalid tcqos configuration: ${error.message}`);
    throw error;
  }
}

/**
 * The BandwidthPolicies that select the pod, for this attachment's network: from the entry the node
 * agent keeps for the pod (src/policy/entries.ts), none when it has none or it cannot be used (the
 * agent then applies the policy right after the ADD).
 */
export function policyFromEntry(context: CommandContext, settings: Settings, log: Logger): BandwidthPolicyInput | undefined {
  const pod = podIdentity(context);
  if (!pod) return undefined;
  const read = new PolicyEntries(stateDirFrom(context.vars, settings.stateDir)).read(pod);
  if (read.problem) log.warn({ problem: read.problem }, 'the BandwidthPolicy entry of the pod cannot be used: shaping without it until the agent applies it');
  return read.entry && resolveForNetwork(read.entry.policies, typeof context.config['name'] === 'string' ? context.config['name'] : '');
}

/**
 * The policy in force with the pod's BandwidthPolicy: `derived` (without it) when the policy
 * cannot be applied to this attachment (its trees do not fit under this network's caps, say): a
 * policy never keeps a pod from starting, and the agent reports it on the policy.
 */
export async function deriveWithPolicy(context: CommandContext, policy: BandwidthPolicyInput, derived: DerivedPolicy, log: Logger): Promise<DerivedPolicy> {
  try {
    return await derivePolicy({ config: context.config, policy });
  } catch (error) {
    if (!(error instanceof ConfigError) || !error.source?.startsWith('BandwidthPolicy ')) throw error;
    log.warn({ error: error.message }, 'the BandwidthPolicy selecting the pod cannot be applied to this attachment: shaping by the configuration');
    return derived;
  }
}

/**
 * The settings alone, for commands that must work even when the configuration no longer validates
 * (DEL, GC): tcqos finds its own state by its names, and a pod must never become undeletable.
 */
export async function settingsOrDefaults(context: CommandContext, config: Record<string, unknown> = context.config): Promise<Settings> {
  try {
    return (await derivePolicy({ config })).settings;
  } catch (error) {
    if (error instanceof ConfigError) return { hostSide: true, logLevel: 'warn' };
    throw error;
  }
}

export function podIdentity(context: CommandContext): PodIdentity | undefined {
  const { args } = context.env;
  const namespace = args['K8S_POD_NAMESPACE'];
  const name = args['K8S_POD_NAME'];
  if (!namespace || !name) return undefined;
  return { namespace, name, ...(args['K8S_POD_UID'] ? { uid: args['K8S_POD_UID'] } : {}) };
}

/**
 * The host end of the pod's veth when the chain's result names one in this (the node's) namespace
 * and the configuration shapes there (hostSide, the default); undefined for a macvlan pod. DEL asks
 * with `orLeftIfb`: its veth may be gone with the pod's netns, leaving only the ifb to remove.
 */
export async function hostEndFor(
  context: CommandContext,
  settings: Pick<Settings, 'hostSide'>,
  tools: SessionOptions,
  orLeftIfb = false,
): Promise<HostEnd | undefined> {
  const candidates = hostInterfaces(context.config['prevResult']);
  if (!settings.hostSide || !candidates.length) return undefined;
  const found = await withSession(NetnsSession.node(tools), (node) => findHostEnd(node, candidates, orLeftIfb));
  return found ? { interface: found, netns: ownNetnsIdentity() } : undefined;
}

export function registryFor(context: CommandContext, settings: Settings): Registry {
  return new Registry(stateDirFrom(context.vars, settings.stateDir));
}

export function commandLogger(context: Pick<CommandContext, 'env'>, settings: Settings): Logger {
  const { env } = context;
  return createLogger(settings, {
    command: env.command,
    containerId: env.containerId,
    ifname: env.ifname,
    ...(env.args['K8S_POD_NAMESPACE'] ? { pod: `${env.args['K8S_POD_NAMESPACE']}/${env.args['K8S_POD_NAME'] ?? ''}` } : {}),
  });
}

/** Warnings at warn; expected adjustments (containerd's burst clamped on every annotated pod) at info. */
export function logConfigNotes(logger: Logger, derived: Pick<DerivedPolicy, 'warnings' | 'notices'>): void {
  for (const warning of derived.warnings) logger.warn({}, warning);
  for (const notice of derived.notices) logger.info({}, notice);
}
