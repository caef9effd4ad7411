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
import type { ClassInfo, QdiscInfo } from '../tc/types.ts';
import { parseJson, type JsonValue } from '../text/json.ts';
import { classesFromOutput, failedCommands, qdiscsFromJson } from './observe.ts';
import { ToolError, type NetnsSession, type ToolRun } from './session.ts';

/** One device's qdiscs and HTB classes, each with its counters. */
export interface DeviceCounters {
  readonly device: string;
  readonly qdiscs: readonly QdiscInfo[];
  /** HTB classes only (a tbf lists pseudo-classes of their own). */
  readonly classes: readonly ClassInfo[];
}

/** The batch for `devices`: two lines each, in this order (the reader depends on it). */
export function countersScript(devices: readonly string[]): string {
  return script(devices.flatMap((device) => [`qdisc show dev ${safeWord(device)}`, `class show dev ${safeWord(device)}`]));
}

/** The counters of each of `devices` that exists (a missing one is absent from the map); one tc process. */
export async function readCounters(session: NetnsSession, devices: readonly string[]): Promise<Map<string, DeviceCounters>> {
  const run = await session.run('tc', ['-s', '-j', '-force', '-batch', '-'], countersScript(devices));
  return countersFromBatch(devices, run);
}

/** The output split into JSON documents (one per line) and the text lines between them. */
type Item = { readonly json: JsonValue; readonly line: string } | { readonly text: string };

function items(stdout: string): Item[] {
  const found: Item[] = [];
  for (const line of stdout.split('\n')) {
    if (line.startsWith('[') || line.startsWith('{')) found.push({ json: parseJson(line), line });
    else if (line.trim() !== '') found.push({ text: line });
  }
  return found;
}

/** A document of classes, as a later iproute2 prints them under -j (an empty one too). */
function isClassList(value: JsonValue): boolean {
  return Array.isArray(value) && value.every((entry) => typeof entry === 'object' && entry !== null && !Array.isArray(entry) && entry['class'] !== undefined);
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
    let qdiscs: QdiscInfo[] = [];
    let classes: ClassInfo[] = [];
    if (!failed.has(qdiscCommand)) {
      const item = output[at++];
      if (item === undefined || !('json' in item)) throw new SyntaxError(`tc printed no qdisc list for ${device} where one was expected`);
      qdiscs = qdiscsFromJson(item.json, device);
    }
    if (!failed.has(qdiscCommand + 1)) {
      // This command's output: a document of classes, or the text lines up to the next document.
      const lines: string[] = [];
      const next = output[at];
      if (next !== undefined && 'json' in next && isClassList(next.json)) {
        lines.push(next.line);
        at++;
      } else {
        for (let item = output[at]; item !== undefined && 'text' in item; item = output[++at]) lines.push(item.text);
      }
      classes = classesFromOutput(lines.join('\n'));
    }
    if (!failed.has(qdiscCommand)) result.set(device, { device, qdiscs, classes });
  });
  if (at !== output.length) throw new SyntaxError(`tc printed ${output.length - at} more documents than the commands that succeeded`);
  return result;
}
