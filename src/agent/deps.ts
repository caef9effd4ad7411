/**
 * What the agent needs from the rest of tcqos: the registry of attachments, the use case that
 * converges an attachment on a pod's inputs, the annotations-to-runtime-values rule and the stats.
 * Injected, so the agent's own logic is tested with fakes; run.ts wires the real ones.
 */
import type { BandwidthPolicyInput } from '../config/policy.ts';
import type { Logger } from '../log.ts';
import type { StatsReading } from '../attachment/stats.ts';

export interface AttachmentRef {
  readonly containerId: string;
  readonly ifname: string;
}

/** What the agent reads of a registry record. */
export interface AttachmentView extends AttachmentRef {
  readonly network: string;
  readonly pod?: { readonly namespace: string; readonly name: string; readonly uid?: string };
  /** Where its shaping sits: inside the pod's netns, or on the host end of its veth (out of the pod's reach). */
  readonly site: 'pod' | 'host';
}

export interface PodInputs {
  readonly runtime?: Record<string, unknown>;
  readonly annotations?: Readonly<Record<string, string>>;
  /** The BandwidthPolicies selecting the pod, resolved for the attachment's network. */
  readonly policy?: BandwidthPolicyInput;
}

/** What converging one attachment came to. */
export interface Converged {
  /** Whether any tc line ran: the kernel differed from the desired state. */
  readonly changed: boolean;
  /** Whether the policy in force changed (new inputs); changed without it is drift put right. */
  readonly policyChanged: boolean;
  /** The tc lines run. */
  readonly commands: readonly string[];
  /** The BandwidthPolicies ("namespace/name") the attachment's policy in force now comes from. */
  readonly shapedBy?: readonly string[];
}

export interface AgentDeps {
  /** Every record of the registry, read once (the agent indexes them by pod). */
  listAttachments(): readonly AttachmentView[];
  /** Forgets the attachments whose netns is gone (their records, their host ends' ifbs, their classes on an uplink); returns them. */
  dropGone(): Promise<readonly AttachmentView[]>;
  /**
   * Converges the attachment's kernel state on the policy these inputs give under its recorded caps:
   * reads the kernel, compares with that policy and applies only the difference; records the inputs.
   */
  applyPodInputs(ref: AttachmentRef, inputs: PodInputs, log: Logger): Promise<Converged>;
  /** The same, on the inputs its record already holds: the running shaping, kept and put right. */
  keepInForce(ref: AttachmentRef, log: Logger): Promise<Converged>;
  /** The kubernetes.io/*-bandwidth annotations as runtime bandwidth values; throws ConfigError when invalid. */
  runtimeFromAnnotations(annotations: Readonly<Record<string, string>>): Record<string, unknown> | undefined;
  /** Every attachment's counters, and those that could not be read. */
  readStats(): Promise<StatsReading>;
  /** Calls `onNew` with the pod of each attachment added from now on (an ADD's new record); returns a function that stops. */
  watchNewAttachments?(onNew: (pod: { readonly namespace: string; readonly name: string }) => void): () => void;
}
