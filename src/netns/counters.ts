/**
 * Reading the kernel's counters of an attachment's devices in one process: a single
 * `tc -s -j -force -batch -` runs `qdisc show dev D` and `class show dev D` for every device named.
 *
 * What comes back is a mixed sequence. Each `qdisc show` prints one JSON document on one line (with
 * no "dev" member: tc leaves it out when the command names the device). iproute2 6.1 prints HTB
 * classes as text even under -j, one block per class ("class htb ..." and indented statistics);
 * later versions print a JSON document. With -force a missing device's commands print nothing and
 * each adds "Command failed -:N" to stderr, so the output is matched to the commands that succeeded,
 * in order: which documents belong to which device is known from the commands, not guessed from them.
 */
import { script, safeWord } from '../plan/batch.ts';
import type { ClassInfo, QdiscInfo, TcCounters } from '../tc/types.ts';
import { parseJson, type JsonValue } from '../text/json.ts';
import { classFromText } from './observe.ts';
import { ToolError, type NetnsSession, type ToolRun } from './session.ts';

/** One device's qdiscs and HTB classes, each with its counters. */
export interface DeviceCounters {
  readonly device: string;
  readonly qdiscs: readonly QdiscCounters[];
  /** HTB classes only (a tbf lists pseudo-classes of its own). */
  readonly classes: readonly ClassInfo[];
}

/** What counting needs of a qdisc: where it sits and what it counted. */
export type QdiscCounters = Pick<QdiscInfo, 'kind' | 'handle' | 'root' | 'parent' | 'counters'>;

type JsonObject = { [key: string]: JsonValue };

/** The batch for `devices`: two lines each, in this order (the reader depends on it). */
export function countersScript(devices: readonly string[]): string {
  return script(devices.flatMap((device) => [`qdisc show dev ${safeWord(device)}`, `class show dev ${safeWord(device)}`]));
}

/** The counters of each of `devices` that exists (a missing one is absent from the map); one tc process. */
export async function readCounters(session: NetnsSession, devices: readonly string[]): Promise<Map<string, DeviceCounters>> {
  const run = await session.run('tc', ['-s', '-j', '-force', '-batch', '-'], countersScript(devices));
  return countersFromBatch(devices, run);
}

/** Command numbers (from 1) that tc reported as failed. */
function failedCommands(stderr: string): Set<number> {
  return new Set([...stderr.matchAll(/^Command failed [^\n]*:(\d+)$/gm)].map((found) => Number(found[1])));
}

/** The output split into JSON documents (one per line) and the text lines between them. */
type Item = { readonly json: JsonValue } | { readonly text: string };

function items(stdout: string): Item[] {
  const found: Item[] = [];
  for (const line of stdout.split('\n')) {
    if (line.startsWith('[') || line.startsWith('{')) found.push({ json: parseJson(line) });
    else if (line.trim() !== '') found.push({ text: line });
  }
  return found;
}

/** Reads a `tc -s -j -force -batch` run of `countersScript(devices)`. Pure: tested on captured output. */
export function countersFromBatch(devices: readonly string[], run: Pick<ToolRun, 'exitCode' | 'stdout' | 'stderr'>): Map<string, DeviceCounters> {
  const failed = failedCommands(run.stderr);
  // A failure that is not a command's own (tc could not start its batch, say) fails the read.
  if (run.exitCode !== 0 && failed.size === 0) throw new ToolError({ command: 'tc -s -j -force -batch -', exitCode: run.exitCode, stdout: run.stdout, stderr: run.stderr });
  const output = items(run.stdout);
  let at = 0;
  const result = new Map<string, DeviceCounters>();
  devices.forEach((device, index) => {
    const qdiscCommand = 2 * index + 1;
    const qdiscs: QdiscCounters[] = [];
    const classes: ClassInfo[] = [];
    if (!failed.has(qdiscCommand)) {
      const item = output[at++];
      if (item === undefined || !('json' in item)) throw new SyntaxError(`tc printed no qdisc list for ${device} where one was expected`);
      qdiscs.push(...objects(item.json).map(qdiscCounters));
    }
    if (!failed.has(qdiscCommand + 1)) {
      const blocks: string[] = [];
      for (; at < output.length; at++) {
        const item = output[at]!;
        if ('json' in item) {
          // A later iproute2 prints classes as JSON: a document of classes (or an empty one) is this command's.
          const entries = objects(item.json);
          if (entries.length && !entries.every((entry) => entry['class'] !== undefined)) break;
          classes.push(...entries.filter((entry) => entry['class'] === 'htb').map(classFromJson));
          at++;
          break;
        }
        if (item.text.startsWith('class ')) blocks.push(item.text);
        else if (blocks.length) blocks[blocks.length - 1] += `\n${item.text}`;
      }
      classes.push(...blocks.filter((block) => block.startsWith('class htb ')).map(classFromText));
    }
    if (!failed.has(qdiscCommand)) result.set(device, { device, qdiscs, classes });
  });
  if (at !== output.length) throw new SyntaxError(`tc printed ${output.length - at} more documents than the commands that succeeded`);
  return result;
}

function objects(value: JsonValue): JsonObject[] {
  if (!Array.isArray(value)) return [];
  return value.filter((item): item is JsonObject => typeof item === 'object' && item !== null && !Array.isArray(item));
}

function countersOf(entry: JsonObject): TcCounters {
  return {
    bytes: Number(entry['bytes'] ?? 0),
    packets: Number(entry['packets'] ?? 0),
    drops: Number(entry['drops'] ?? 0),
    overlimits: Number(entry['overlimits'] ?? 0),
    backlogBytes: Number(entry['backlog'] ?? 0),
  };
}

function qdiscCounters(entry: JsonObject): QdiscCounters {
  const root = entry['root'] === true;
  const parent = entry['parent'];
  return {
    kind: String(entry['kind']),
    handle: String(entry['handle']),
    root,
    parent: root || parent === 'ffff:fff1' || typeof parent !== 'string' ? undefined : parent,
    counters: countersOf(entry),
  };
}

/** An HTB class as a later iproute2 prints it under -j (only what counting needs). */
function classFromJson(entry: JsonObject): ClassInfo {
  return {
    id: String(entry['handle']),
    parent: typeof entry['parent'] === 'string' ? entry['parent'] : undefined,
    prio: undefined,
    quantum: undefined,
    rate: undefined,
    ceil: undefined,
    burst: undefined,
    cburst: undefined,
    counters: entry['bytes'] === undefined ? undefined : countersOf(entry),
  };
}
