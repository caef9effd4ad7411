/**
 * What tc and ip print, read into the tc vocabulary (src/tc/types.ts). Pure: no process runs here.
 */
import type { ClassInfo, FilterInfo, LinkInfo, QdiscInfo, TcCounters } from '../tc/types.ts';
import { parseJson, type JsonValue } from '../text/json.ts';

type JsonObject = { [key: string]: JsonValue };

function objects(value: JsonValue): JsonObject[] {
  if (!Array.isArray(value)) return [];
  return value.filter((item): item is JsonObject => typeof item === 'object' && item !== null && !Array.isArray(item));
}

function list(value: JsonValue | undefined): JsonValue[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
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

/** The lines (from 1) of a `-force -batch` that tc reported as failed. */
export function failedCommands(stderr: string): Set<number> {
  return new Set([...stderr.matchAll(/^Command failed [^\n]*:(\d+)$/gm)].map((found) => Number(found[1])));
}

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
      burst: bucketOf(options),
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
  const { lat, rate } = options;
  const burst = bucketOf(options);
  if (typeof lat !== 'number' || typeof rate !== 'number' || burst === undefined) return undefined;
  return Math.round((lat * rate) / 1e6 + burst);
}

/** A tbf's bucket in bytes: a number, or with -d a printed size with its cell ("5000b/1"). */
function bucketOf(options: JsonObject): number | undefined {
  const burst = options['burst'];
  return typeof burst === 'number' ? burst : typeof burst === 'string' ? printedSize(burst) : undefined;
}

export function filtersFromJson(value: JsonValue): FilterInfo[] {
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
