/** The tcqos plugin: its commands, registered with the CNI skel in one object. */
import type { PluginCommands } from '../cni/skel.ts';
import type { SessionOptions } from '../netns/session.ts';
import { add } from './add.ts';
import { check } from './check.ts';
import { del } from './del.ts';
import { describeFailure } from './failures.ts';
import { gc } from './gc.ts';
import { status } from './status.ts';

/** `tools`: how the pod namespace's tools run, and the faults a test build injects (none when shipped). */
export function tcqosCommands(tools: SessionOptions = {}): PluginCommands {
  return { add: (context) => add(context, tools), check, del: (context) => del(context, tools), status, gc, describeFailure };
}
