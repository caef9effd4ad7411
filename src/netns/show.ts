/**
 * Reading tc state in one process: a single `tc -s -d -j -force -batch -` of `show` commands, its
 * output matched to the commands that printed it.
 *
 * What comes back is a mixed sequence: each `qdisc show` and `filter show` prints one JSON document
 * on one line (`qdisc show dev D` leaves the device out of its entries); iproute2 6.1 prints HTB
 * classes as text even under -j, one block per class ("class htb ..." and indented statistics),
 * later versions a JSON document. With -force, a command on a missing device prints nothing and tc
 * names it on stderr ("Command failed -:N"), so which output belongs to which command is known from
 * the commands, never guessed.
 */
import { script, safeWord } from '../plan/batch.ts';
import type { ClassInfo, FilterInfo, QdiscInfo } from '../tc/types.ts';
import { parseJson, type JsonValue } from '../text/json.ts';
import { classesFromOutput, failedCommands, filtersFromJson, qdiscsFromJson } from './parse.ts';
import { ToolError, type NetnsSession, type ToolRun } from './session.ts';

/** A `show` command: a device's qdiscs, its HTB classes, or the filters of its root or of a hook. */
export type ShowCommand =
  | { readonly show: 'qdisc'; readonly dev: string }
  | { readonly show: 'class'; readonly dev: string }
  | { readonly show: 'filter'; readonly dev: string; readonly hook?: 'ingress' | 'egress' };

/** What a command printed; undefined when it failed (its device is missing). */
export type Shown = { readonly qdiscs: QdiscInfo[] } | { readonly classes: ClassInfo[] } | { readonly filters: FilterInfo[] } | undefined;

function line(command: ShowCommand): string {
  const dev = safeWord(command.dev);
  if (command.show === 'filter') return `filter show dev ${dev}${command.hook ? ` ${command.hook}` : ''}`;
  return `${command.show} show dev ${dev}`;
}

/** The batch of the commands, one line each. */
export function showScript(commands: readonly ShowCommand[]): string {
  return script(commands.map(line));
}

/** Resolves to what each command printed, in order: in one tc process, or in the node's shared batches. */
export async function showAll(session: NetnsSession, commands: readonly ShowCommand[]): Promise<Shown[]> {
  return session.nodeBatches ? session.nodeBatches.show(commands) : showNow(session, commands);
}

/** Runs the commands in one tc process of its own. */
export async function showNow(session: NetnsSession, commands: readonly ShowCommand[]): Promise<Shown[]> {
  const run = await session.run('tc', ['-s', '-d', '-j', '-force', '-batch', '-'], showScript(commands));
  return shownFrom(commands, run);
}

/** The output split into JSON documents (one per line) and the text lines between them. */
type Item = { readonly json: JsonValue; readonly line: string } | { readonly text: string };

function items(stdout: string): Item[] {
  const found: Item[] = [];
  for (const text of stdout.split('\n')) {
    if (text.startsWith('[') || text.startsWith('{')) found.push({ json: parseJson(text), line: text });
    else if (text.trim() !== '') found.push({ text });
  }
  return found;
}

/** A document of classes, as a later iproute2 prints them under -j (an empty one too). */
function isClassList(value: JsonValue): boolean {
  return Array.isArray(value) && value.every((entry) => typeof entry === 'object' && entry !== null && !Array.isArray(entry) && entry['class'] !== undefined);
}

/** Reads a run of `showAll(commands)`. Pure: tested on captured output. */
export function shownFrom(commands: readonly ShowCommand[], run: Pick<ToolRun, 'exitCode' | 'stdout' | 'stderr'>): Shown[] {
  const failed = failedCommands(run.stderr);
  // A failure that is not a command's own (tc could not start its batch, say) fails the read.
  if (run.exitCode !== 0 && failed.size === 0) throw new ToolError({ command: 'tc -s -d -j -force -batch -', exitCode: run.exitCode, stdout: run.stdout, stderr: run.stderr });
  const output = items(run.stdout);
  let at = 0;
  const document = (command: ShowCommand): JsonValue => {
    const item = output[at++];
    if (item === undefined || !('json' in item)) throw new SyntaxError(`tc printed nothing for "${line(command)}" where a document was expected`);
    return item.json;
  };
  /** JSON documents the qdisc and filter commands after `index` print: what a class command must leave them. */
  const documentsAfter = (index: number) =>
    commands.slice(index + 1).filter((command, offset) => command.show !== 'class' && !failed.has(index + 2 + offset)).length;
  const jsonLeft = () => output.slice(at).filter((item) => 'json' in item).length;
  const shown = commands.map((command, index): Shown => {
    if (failed.has(index + 1)) return undefined;
    switch (command.show) {
      case 'qdisc':
        return { qdiscs: qdiscsFromJson(document(command), command.dev) };
      case 'filter':
        return { filters: filtersFromJson(document(command)) };
      case 'class': {
        // a document of classes, or the text lines up to the next document; an empty `[]` is the
        // classes' only when the commands after it leave it over
        const next = output[at];
        if (next !== undefined && 'json' in next && isClassList(next.json) && jsonLeft() > documentsAfter(index)) {
          at++;
          return { classes: classesFromOutput(next.line) };
        }
        const lines: string[] = [];
        for (let item = output[at]; item !== undefined && 'text' in item; item = output[++at]) lines.push(item.text);
        return { classes: classesFromOutput(lines.join('\n')) };
      }
    }
  });
  if (at !== output.length) throw new SyntaxError(`tc printed ${output.length - at} more documents than the commands that succeeded`);
  return shown;
}

export function qdiscsOf(shown: Shown): QdiscInfo[] {
  return shown && 'qdiscs' in shown ? shown.qdiscs : [];
}

export function classesOf(shown: Shown): ClassInfo[] {
  return shown && 'classes' in shown ? shown.classes : [];
}

export function filtersOf(shown: Shown): FilterInfo[] {
  return shown && 'filters' in shown ? shown.filters : [];
}
