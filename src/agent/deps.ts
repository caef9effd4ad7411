/**
 * What the agent needs from the rest of tcqos: the registry of attachments, the use case that
 * applies a pod's inputs live, the annotations-to-runtime-values rule and the stats. Injected, so
 * the agent's own logic is tested with fakes; run.ts wires the real ones.
 */
import type { Logger } from '../log.ts';
import type { AttachmentStats } from '../attachment/stats.ts';

export interface AttachmentRef {
  readonly containerId: string;
  readonly ifname: string;
}

/** What the agent reads of a registry record. */
export interface AttachmentView extends AttachmentRef {
  readonly network: string;
  readonly pod?: { readonly namespace: string; readonly name: string; readonly uid?: string };
  /** The pod's annotations in force on this attachment (as last applied by ADD or the agent). */
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface PodInputs {
  readonly runtime?: Record<string, unknown>;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface AgentDeps {
  findByPod(namespace: string, name: string): readonly AttachmentView[];
  /** Removes the records whose netns is gone; returns them. */
  dropGone(): readonly AttachmentView[];
  /** Re-derives the attachment's policy from these inputs under its recorded caps and reshapes it live. */
  applyPodInputs(ref: AttachmentRef, inputs: PodInputs, log: Logger): Promise<{ readonly changed: boolean }>;
  /** The kubernetes.io/*-bandwidth annotations as runtime bandwidth values; throws ConfigError when invalid. */
  runtimeFromAnnotations(annotations: Readonly<Record<string, string>>): Record<string, unknown> | undefined;
  collectStats(): Promise<readonly AttachmentStats[]>;
}
