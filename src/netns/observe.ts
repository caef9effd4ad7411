/**
 * Reading what is installed in a netns: links (ip -j), qdiscs and filters (tc -j), HTB classes
 * with their counters. Knows tc's output formats, nothing about policies.
 */
import { script, safeWord, showLinkLines } from '../plan/batch.ts';
import { ifbName } from '../tc/handles.ts';
import { attachmentState, isOurs, type AttachmentState } from '../tc/ownership.ts';
import type { ClassInfo, FilterInfo, LinkInfo, ObservedAttachment, ObservedTree, QdiscInfo, TcCounters } from '../tc/types.ts';
import { parseJson, parseJsonSequence, type JsonValue } from '../text/json.ts';
import { ToolError, type NetnsSession, type ToolRun } from './session.ts';

type JsonObject = { [key: string]: JsonValue };

function objects(value: JsonValue): JsonObject[] {
  if (!Array.isArray(value)) return [];
  return value.filter((item): item is JsonObject => typeof item === 'object' && item !== null && !Array.isArray(item));
}

function list(value: JsonValue | undefined): JsonValue[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** The links named (those that exist), from one process. */
export async function readLinks(session: NetnsSession, devices: readonly string[]): Promise<LinkInfo[]> {
  const run = await session.run('ip', ['-j', '-d', '-force', '-batch', '-'], script(showLinkLines(devices)));
  return parseJsonSequence(run.stdout).flatMap(linksFromJson);
}

/** `ip -j -d link show` output (also what an `ip -j -batch` of `link show` lines prints per line). */
export function linksFromJson(value: JsonValue): LinkInfo[] {
  return objects(value).map((link) => ({
    name: String(link['ifname']),
    ifindex: Number(link['ifindex']),
    linkIndex: typeof link['link_index'] === 'number' ? link['link_index'] : undefined,
    address: typeof link['address'] === 'string' ? link['address'] : undefined,
    mtu: Number(link['mtu']),
    txqlen: Number(link['txqlen'] ?? 0),
    up: list(link['flags']).includes('UP'),
    kind: (link['linkinfo'] as JsonObject | undefined)?.['info_kind'] as string | undefined,
    rootQdiscKind: String(link['qdisc'] ?? ''),
  }));
}

export interface QdiscsAndIngress {
  /** Every device's qdiscs: each device has at least its root entry, so this also lists the devices. */
  readonly qdiscs: readonly QdiscInfo[];
  readonly ingressFilters: readonly FilterInfo[];
}

/**
 * The qdiscs of `dev` and `ifb` and the ingress filters of `dev`, from one tc process. Only these
 * devices are read: in the node's namespace there may be hundreds of others.
 */
export async function readQdiscsAndIngress(session: NetnsSession, dev: string, ifb: string): Promise<QdiscsAndIngress> {
  // -force: a missing device fails only its own line; -s: the counters come at no extra cost.
  const lines = [`qdisc show dev ${safeWord(dev)}`, `qdisc show dev ${safeWord(ifb)}`, `filter show dev ${safeWord(dev)} ingress`];
  const run = await session.run('tc', ['-s', '-j', '-force', '-batch', '-'], script(lines));
  const [devQdiscs, ifbQdiscs, filters] = documentsPerLine(run, lines.length);
  if (devQdiscs === undefined && ifbQdiscs === undefined && !/Cannot find device/.test(run.stderr)) throw new ToolError(run);
  return {
    // `qdisc show dev X` leaves the device out of its entries
    qdiscs: [...qdiscsFromJson(devQdiscs ?? [], dev), ...qdiscsFromJson(ifbQdiscs ?? [], ifb)],
    ingressFilters: filters === undefined ? [] : filtersFromJson(filters),
  };
}

/** The lines (from 1) of a `-force -batch` that tc reported as failed. */
export function failedCommands(stderr: string): Set<number> {
  return new Set([...stderr.matchAll(/^Command failed [^\n]*:(\d+)$/gm)].map((found) => Number(found[1])));
}

/**
 * What each line of a `-force -batch` printed: one JSON document per line that succeeded, nothing
 * for a line that failed (tc names it on stderr: "Command failed -:N").
 */
export function documentsPerLine(run: ToolRun, count: number): Array<JsonValue | undefined> {
  const failed = failedCommands(run.stderr);
  const documents = parseJsonSequence(run.stdout);
  let next = 0;
  return Array.from({ length: count }, (_, index) => (failed.has(index + 1) ? undefined : documents[next++]));
}

/** What one `tc -j qdisc show dev DEV` printed (tc leaves the device out of its entries). */
export function qdiscsFromJson(value: JsonValue, dev: string): QdiscInfo[] {
  return objects(value).map((qdisc) => {
    const options = (qdisc['options'] ?? {}) as JsonObject;
    const defaultMinor = options['default'];
    return {
      dev,
      kind: String(qdisc['kind']),
      handle: String(qdisc['handle']),
      root: qdisc['root'] === true,
      ingress: qdisc['parent'] === 'ffff:fff1',
      parent: qdisc['root'] === true || qdisc['parent'] === 'ffff:fff1' ? undefined : (qdisc['parent'] as string | undefined),
      defaultClass: typeof defaultMinor === 'string' ? defaultMinor.replace(/^0x/, '') : undefined,
      limit: queueLimit(options),
      rate: typeof options['rate'] === 'number' ? options['rate'] * 8 : undefined,
      burst: typeof options['burst'] === 'number' ? options['burst'] : undefined,
      counters: {
        bytes: Number(qdisc['bytes'] ?? 0),
        packets: Number(qdisc['packets'] ?? 0),
        drops: Number(qdisc['drops'] ?? 0),
        overlimits: Number(qdisc['overlimits'] ?? 0),
        backlogBytes: Number(qdisc['backlog'] ?? 0),
      },
    };
  });
}

/**
 * A tbf's queue limit in bytes. tc prints it as the latency it allows (`lat`, in µs) rather than
 * as bytes: limit = lat × rate + burst.
 */
function queueLimit(options: JsonObject): number | undefined {
  if (typeof options['limit'] === 'number') return options['limit'];
  const { lat, rate, burst } = options;
  if (typeof lat !== 'number' || typeof rate !== 'number' || typeof burst !== 'number') return undefined;
  return Math.round((lat * rate) / 1e6 + burst);
}

/** The filters of `dev`'s root qdisc, or of its clsact egress hook. */
export async function readFilters(session: NetnsSession, dev: string, where: 'root' | 'egress' = 'root'): Promise<FilterInfo[]> {
  const run = await session.mustRun('tc', ['-j', 'filter', 'show', 'dev', dev, ...(where === 'egress' ? ['egress'] : [])]);
  return filtersFromJson(parseJson(run.stdout));
}

function filtersFromJson(value: JsonValue): FilterInfo[] {
  // tc prints a header entry per filter priority, then one entry per filter (those have match keys,
  // or a program)
  return objects(value)
    .filter((entry) => {
      const options = entry['options'] as JsonObject | undefined;
      return options !== undefined && (options['match'] !== undefined || options['prog'] !== undefined);
    })
    .map((entry) => {
      const options = entry['options'] as JsonObject;
      const mirred = objects(list(options['actions'])).find((action) => action['kind'] === 'mirred');
      const program = options['prog'] as JsonObject | undefined;
      return {
        ...(typeof program?.['tag'] === 'string' ? { programTag: program['tag'] } : {}),
        pref: Number(entry['pref']),
        protocol: String(entry['protocol']),
        kind: String(entry['kind']),
        flowid: typeof options['flowid'] === 'string' ? options['flowid'] : undefined,
        keys: objects(list(options['match'])).map((key) => ({
          value: Number.parseInt(String(key['value']), 16) >>> 0,
          mask: Number.parseInt(String(key['mask']), 16) >>> 0,
          offset: Number(key['off']),
        })),
        redirectTo: mirred ? String(mirred['to_dev']) : undefined,
      };
    });
}

/**
 * iproute2 6.1 prints HTB classes as text even under -j, so classes are read from
 * `tc -s -d class show`: JSON when tc gives it, otherwise its text, one block per class.
 */
export async function readClasses(session: NetnsSession, dev: string): Promise<ClassInfo[]> {
  const run = await session.mustRun('tc', ['-j', '-s', '-d', 'class', 'show', 'dev', dev]);
  return classesFromOutput(run.stdout);
}

/** What one `tc -j [-s] class show` printed: its HTB classes (JSON, or text one block per class). */
export function classesFromOutput(output: string): ClassInfo[] {
  const text = output.trim();
  // Leaf qdiscs such as tbf list pseudo-classes of their own: only HTB's classes are tcqos's.
  if (text.startsWith('[')) return objects(parseJson(text)).filter((c) => c['class'] === 'htb').map(classFromJson);
  return classBlocks(text).map(classFromText);
}

/** `tc -s class show` text: a "class ..." line followed by indented statistics lines. */
function classBlocks(text: string): string[] {
  const blocks: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('class ')) blocks.push(line);
    else if (blocks.length && /^\s/.test(line)) blocks[blocks.length - 1] += `\n${line}`;
  }
  return blocks.filter((block) => block.startsWith('class htb '));
}

function classFromJson(entry: JsonObject): ClassInfo {
  const options = (entry['options'] ?? {}) as JsonObject;
  const number = (value: JsonValue | undefined): number | undefined => (typeof value === 'number' ? value : undefined);
  return {
    id: String(entry['handle']),
    parent: typeof entry['parent'] === 'string' ? entry['parent'] : undefined,
    prio: number(options['prio']),
    quantum: number(options['quantum']),
    rate: options['rate'] === undefined ? undefined : Number(options['rate']) * 8,
    ceil: options['ceil'] === undefined ? undefined : Number(options['ceil']) * 8,
    burst: number(options['burst']),
    cburst: number(options['cburst']),
    counters:
      entry['bytes'] === undefined
        ? undefined
        : {
            bytes: Number(entry['bytes']),
            packets: Number(entry['packets'] ?? 0),
            drops: Number(entry['drops'] ?? 0),
            overlimits: Number(entry['overlimits'] ?? 0),
            backlogBytes: Number(entry['backlog'] ?? 0),
          },
  };
}

/**
 * "class htb 7c05:11 parent 7c05:1 prio 0 quantum 1514 rate 10Mbit ceil 10Mbit ... burst 2762b/1 ...",
 * optionally followed by " Sent 1234 bytes 12 pkt (dropped 0, overlimits 3 requeues 0)" and
 * " backlog 0b 0p requeues 0".
 */
export function classFromText(block: string): ClassInfo {
  const [line = '', ...statistics] = block.split('\n');
  const words = line.trim().split(/\s+/);
  const after = (key: string): string | undefined => {
    const at = words.indexOf(key);
    return at >= 0 ? words[at + 1] : undefined;
  };
  const integer = (text: string | undefined): number | undefined => (text === undefined ? undefined : Number.parseInt(text, 10));
  return {
    id: words[2] ?? '',
    parent: after('parent'),
    prio: integer(after('prio')),
    quantum: integer(after('quantum')),
    rate: printedRate(after('rate')),
    ceil: printedRate(after('ceil')),
    burst: printedSize(after('burst')),
    cburst: printedSize(after('cburst')),
    counters: countersFromText(statistics.join('\n')),
  };
}

function countersFromText(text: string): TcCounters | undefined {
  const sent = /Sent (\d+) bytes (\d+) pkt \(dropped (\d+), overlimits (\d+)/.exec(text);
  if (!sent) return undefined;
  const backlog = /backlog (\S+) /.exec(text)?.[1];
  return {
    bytes: Number(sent[1]),
    packets: Number(sent[2]),
    drops: Number(sent[3]),
    overlimits: Number(sent[4]),
    backlogBytes: printedSize(backlog) ?? 0,
  };
}

const SCALE: Record<string, number> = { '': 1, K: 1e3, M: 1e6, G: 1e9, T: 1e12 };

/** tc's printed rate ("40Mbit", "12345Kbit") in bits per second. */
export function printedRate(text: string | undefined): number | undefined {
  const found = text === undefined ? null : /^(\d+(?:\.\d+)?)([KMGT]?)bit$/.exec(text);
  return found ? Number(found[1]) * SCALE[found[2]!]! : undefined;
}

/** tc's printed size ("2762b", "4Kb", "1Mb", with an optional "/cell" suffix) in bytes. */
export function printedSize(text: string | undefined): number | undefined {
  const found = text === undefined ? null : /^(\d+(?:\.\d+)?)(b|Kb|Mb|Gb)(?:\/\d+)?$/.exec(text);
  if (!found) return undefined;
  const unit = { b: 1, Kb: 1024, Mb: 1024 ** 2, Gb: 1024 ** 3 }[found[2] as 'b'];
  return Math.round(Number(found[1]) * unit);
}

/** One tc process: the interface's and its ifb's qdiscs (so whether they exist) and the interface's ingress filters. */
export async function readAttachmentState(session: NetnsSession, ifname: string, hook: 'ingress' | 'clsact' = 'ingress', adoptEmptyClsact = false): Promise<AttachmentState> {
  const { qdiscs, ingressFilters } = await readQdiscsAndIngress(session, ifname, ifbName(ifname));
  return attachmentState(ifname, qdiscs, ingressFilters, hook, adoptEmptyClsact);
}

/** The whole attachment: links, both trees with their classes (and counters) and filters. */
export async function observeAttachment(session: NetnsSession, state: AttachmentState): Promise<ObservedAttachment> {
  const links = await readLinks(session, [state.ifname, state.ifb]);
  const tree = async (dev: string, root: QdiscInfo | undefined): Promise<ObservedTree> => {
    const leaves = state.qdiscs.filter((q) => q.dev === dev && q.parent !== undefined);
    if (!root || !isOurs(root)) return { qdisc: root, leaves, classes: [], filters: [] };
    return { qdisc: root, leaves, classes: await readClasses(session, dev), filters: await readFilters(session, dev) };
  };
  return {
    iface: links.find((link) => link.name === state.ifname),
    ifb: links.find((link) => link.name === state.ifb && link.kind === 'ifb'),
    onInterface: await tree(state.ifname, state.root),
    ingressQdisc: state.ingress,
    redirects: state.ingressFilters,
    onIfb: await tree(state.ifb, state.ifbRoot),
  };
}
