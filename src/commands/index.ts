/** The tcqos plugin: its commands, registered with the CNI skel in one object. */
import type { PluginCommands } from '../cni/skel.ts';
import { add } from './add.ts';
import { check } from './check.ts';
import { del } from './del.ts';
import { describeFailure } from './failures.ts';
import { gc } from './gc.ts';
import { status } from './status.ts';

export const tcqosCommands: PluginCommands = { add, check, del, status, gc, describeFailure };
