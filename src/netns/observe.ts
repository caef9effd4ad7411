/**
 * Reading what is installed in a netns: links (ip -j), qdiscs and filters (tc -j), HTB classes.
 * Knows tc's output formats, nothing about policies.
 */
import { mustRunInNetns, runInNetns, ToolError } from './exec.ts';
import { parseTcJson, parseTcJsonSequence, type JsonValue } from './json.ts';

type JsonObject = { [key: string]: JsonValue };

export interface LinkInfo {
  readonly name: string;
  readonly mtu: number;
  readonly txqlen: number;
  readonly up: boolean;
  /** "ifb", "macvlan", "veth"... (undefined for plain devices) */
  readonly kind: string | undefined;
  /** Kind of the root qdisc ("noqueue" until someone installs one). */
  readonly rootQdiscKind: string;
}

export interface QdiscInfo {
  readonly dev: string;
  readonly kind: string;
  /** "7c05:" style */
  readonly handle: string;
  readonly root: boolean;
  readonly ingress: boolean;
  /** The class a leaf qdisc hangs under ("7c05:10"); undefined for root and ingress qdiscs. */
  readonly parent: string | undefined;
  readonly defaultClass: string | undefined;
  /** A tbf's queue limit in bytes. */
  readonly limit: number | undefined;
}

export interface ClassInfo {
  readonly id: string;
  readonly parent: string | undefined;
  readonly prio: number | undefined;
  readonly quantum: number | undefined;
  /** bits per second, as tc prints them (rounded to its display precision) */
  readonly rate: number | undefined;
  readonly ceil: number | undefined;
  /** bytes */
  readonly burst: number | undefined;
  readonly cburst: number | undefined;
}

export interface U32Key {
  readonly value: number;
  readonly mask: number;
  readonly offset: number;
}

export interface FilterInfo {
  readonly pref: number;
  readonly protocol: string;
  readonly kind: string;
  readonly flowid: string | undefined;
  readonly keys: readonly U32Key[];
  /** Device a mirred action redirects to, if any. */
  readonly redirectTo: string | undefined;
}

function objects(value: JsonValue): JsonObject[] {
  if (!Array.isArray(value)) return [];
  return value.filter((item): item is JsonObject => typeof item === 'object' && item !== null && !Array.isArray(item));
}

function list(value: JsonValue | undefined): JsonValue[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

export function readLinks(netns: string): LinkInfo[] {
  const run = mustRunInNetns(netns, 'ip', ['-j', '-d', 'link', 'show']);
  return linksFromJson(parseTcJson(run.stdout));
}

/** `ip -j -d link show` output (also the last document of an `ip -j -batch` ending with it). */
export function linksFromJson(value: JsonValue): LinkInfo[] {
  return objects(value).map((link) => ({
    name: String(link['ifname']),
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

/** All qdiscs of the netns and the ingress filters of `dev`, from one tc process. */
export function readQdiscsAndIngress(netns: string, dev: string): QdiscsAndIngress {
  // -force: a missing `dev` fails only the second command, whose output is then simply absent.
  const run = runInNetns(netns, 'tc', ['-j', '-force', '-batch', '-'], `qdisc show\nfilter show dev ${dev} ingress\n`);
  const [qdiscs, filters] = parseTcJsonSequence(run.stdout);
  if (qdiscs === undefined) throw new ToolError(run);
  return { qdiscs: qdiscsFromJson(qdiscs), ingressFilters: filters === undefined ? [] : filtersFromJson(filters) };
}

function qdiscsFromJson(value: JsonValue): QdiscInfo[] {
  return objects(value).map((qdisc) => {
    const options = (qdisc['options'] ?? {}) as JsonObject;
    const defaultMinor = options['default'];
    return {
      dev: String(qdisc['dev']),
      kind: String(qdisc['kind']),
      handle: String(qdisc['handle']),
      root: qdisc['root'] === true,
      ingress: qdisc['parent'] === 'ffff:fff1',
      parent: qdisc['root'] === true || qdisc['parent'] === 'ffff:fff1' ? undefined : (qdisc['parent'] as string | undefined),
      defaultClass: typeof defaultMinor === 'string' ? defaultMinor.replace(/^0x/, '') : undefined,
      limit: typeof options['limit'] === 'number' ? options['limit'] : undefined,
    };
  });
}

export function readFilters(netns: string, dev: string, parent: 'root' | 'ingress'): FilterInfo[] {
  const args = ['-j', 'filter', 'show', 'dev', dev, ...(parent === 'ingress' ? ['ingress'] : [])];
  const run = mustRunInNetns(netns, 'tc', args);
  return filtersFromJson(parseTcJson(run.stdout));
}

function filtersFromJson(value: JsonValue): FilterInfo[] {
  // tc prints a header entry per filter priority, then one entry per filter (those have match keys)
  return objects(value)
    .filter((entry) => {
      const options = entry['options'] as JsonObject | undefined;
      return options !== undefined && options['match'] !== undefined;
    })
    .map((entry) => {
      const options = entry['options'] as JsonObject;
      const mirred = objects(list(options['actions'])).find((action) => action['kind'] === 'mirred');
      return {
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
 * `tc -d class show`: JSON when tc gives it, otherwise its one-line-per-class text.
 */
export function readClasses(netns: string, dev: string): ClassInfo[] {
  const run = mustRunInNetns(netns, 'tc', ['-j', '-d', 'class', 'show', 'dev', dev]);
  const text = run.stdout.trim();
  // Leaf qdiscs such as tbf list pseudo-classes of their own: only HTB's classes are tcqos's.
  if (text.startsWith('[')) return objects(parseTcJson(text)).filter((c) => c['class'] === 'htb').map(classFromJson);
  return text
    .split('\n')
    .filter((line) => line.startsWith('class htb '))
    .map(classFromText);
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
  };
}

/** "class htb 7c05:11 parent 7c05:1 prio 0 quantum 1514 rate 10Mbit ceil 10Mbit ... burst 2762b/1 ..." */
export function classFromText(line: string): ClassInfo {
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
