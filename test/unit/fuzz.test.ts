/**
 * Property-based fuzzing (fast-check) of the two places hostile configuration flows through:
 *
 * 1. The whole CNI entry point (src/main via callMain) with CNI_COMMAND=ADD and a CNI_NETNS that
 *    does not exist: whatever arrives, the answer is either success with prevResult passed on
 *    byte for byte, or one CNI error object with a numeric code - never a crash, never code 999.
 * 2. The pure planner: every config that normalises becomes tc -batch lines that are one command
 *    each (no "\n" inside), start with qdisc/class/filter, hold only safe words, and carry numbers
 *    tc can store.
 *
 * The bugs it found have regression tests at the end of this file.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SUPPORTED_VERSIONS } from '../../src/cni/version.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { normalizeConfig } from '../../src/config/normalize.ts';
import { prepareLines, setupLines } from '../../src/plan/batch.ts';
import { planAttachment } from '../../src/plan/tree.ts';
import { callMain } from '../helpers/main.ts';

/** Seeded so a failure reproduces; override with FUZZ_SEED to explore further. */
const SEED = Number(process.env['FUZZ_SEED'] ?? 20261125);
const MAIN_RUNS = Number(process.env['FUZZ_MAIN_RUNS'] ?? 2500);
const GARBAGE_RUNS = Number(process.env['FUZZ_GARBAGE_RUNS'] ?? 1000);
const PLAN_RUNS = Number(process.env['FUZZ_PLAN_RUNS'] ?? 3000);

const ENV = {
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: 'fuzz',
  CNI_NETNS: '/var/run/netns/tcqos-fuzz-does-not-exist',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin',
};

// ---------------------------------------------------------------------------------------------
// Arbitraries. Each value is valid most of the time and hostile some of the time, and optional keys
// are mostly absent, so a good share of configs gets all the way through validation.

/** Usually absent (undefined keys vanish in JSON.stringify), sometimes the value. */
function sometimes<T>(arbitrary: fc.Arbitrary<T>, present = 1, absent = 3): fc.Arbitrary<T | undefined> {
  return fc.oneof({ weight: absent, arbitrary: fc.constant(undefined) }, { weight: present, arbitrary });
}

/** Usually a good value, sometimes a hostile one. */
function mostly<T>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<unknown>, goodWeight = 10): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: goodWeight, arbitrary: good }, { weight: 1, arbitrary: bad });
}

const junk: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 12 }),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
);

const injection = fc.constantFrom(
  '\nqdisc del dev eth0 root',
  '\n',
  ' flowid 7c05:1',
  ';reboot',
  '\r\nfilter del dev eth0',
  '\u0000',
  '#',
  '"',
  '\\',
  ' ',
);

const rateUnit = fc.constantFrom('', 'bit', 'kbit', 'mbit', 'gbit', 'tbit', 'k', 'M', 'G', 'Ki', 'Mi', 'kbps', 'mbps', 'mb', 'KiB', 'x', 'e3');
const sizeUnit = fc.constantFrom('', 'b', 'bit', 'kbit', 'mbit', 'KiB', 'MiB', 'GiB', 'kb', 'mb', 'k', 'bytes', 'Kbit', 'zz');
const amount = fc.oneof(
  fc.integer({ min: 0, max: 2000 }),
  fc.integer({ min: -5, max: 5 }),
  fc.constantFrom(0.5, 1.25, 7999, 8000, 1e9, 1e11, 1e12, 1e30, 2 ** 32, 2 ** 53 + 1),
);

const goodRate = fc.oneof(
  fc.integer({ min: 8_000, max: 100_000_000_000 }),
  fc.tuple(fc.integer({ min: 8, max: 100_000 }), fc.constantFrom('kbit', 'mbit', 'K', 'M')).map(([n, u]) => `${n}${u}`),
);
const badRate: fc.Arbitrary<unknown> = fc.oneof(
  fc.tuple(amount, rateUnit).map(([n, u]) => `${n}${u}`),
  fc.constantFrom(-1, 0, 7_999, 1e30, 1.5, '', ' 10mbit ', '1e3mbit', 'NaN', 'Infinity', '-1mbit', '10 mbit', '101gbit', 'a'.repeat(33)),
  fc.tuple(amount, rateUnit, injection).map(([n, u, i]) => `${n}${u}${i}`),
  junk,
);
const rate = mostly(goodRate, badRate, 6);

const goodSize = fc.oneof(
  fc.integer({ min: 8, max: 80_000_000 }),
  fc.tuple(fc.integer({ min: 1, max: 4096 }), fc.constantFrom('b', 'KiB', 'kbit', 'mbit')).map(([n, u]) => `${n}${u}`),
);
const badSize: fc.Arbitrary<unknown> = fc.oneof(
  fc.tuple(amount, sizeUnit).map(([n, u]) => `${n}${u}`),
  fc.constantFrom(0, -1, 2 ** 32 - 1, 2 ** 35, 2 ** 35 - 9, '4GiB', '10000MiB', '10kb', '1mb'),
  junk,
);
const size = mostly(goodSize, badSize, 4);

const referenceNumber: fc.Arbitrary<unknown> = mostly(
  fc.integer({ min: 8_000, max: 2_000_000_000 }),
  fc.oneof(fc.constantFrom(0, 1, 2 ** 32 - 1, 2 ** 35 - 9, 2 ** 35, 1e30, -1, 1.5, '1000000'), junk),
  5,
);

const v4Cidr = fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 })).map(([ip, p]) => `${ip}/${p}`);
const v6Cidr = fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 128 })).map(([ip, p]) => `${ip}/${p}`);
/**
 * ip-num refuses IPv6 text with an embedded dotted quad ("2001:db8::1.2.3.4", valid by RFC 4291):
 * tcqos then answers with a code 7 error naming the field, which is safe, so those forms are only
 * among the hostile CIDRs here.
 */
const plainV6 = (text: string): boolean => !text.includes('.') && !/^(::ffff:|0:0:0:0:0:ffff:)/i.test(text);
const goodCidr = fc.oneof(v4Cidr, fc.ipV4(), v6Cidr.filter(plainV6), fc.ipV6().filter(plainV6));
const badCidr: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    '::ffff:198.18.0.1', '::ffff:198.18.0.0/120', '::ffff:c612:1/128', '0:0:0:0:0:ffff:c612:1', 'fe80::1%eth0',
    '198.18.0.300/32', '198.18.0.0/33', '198.18.0.0/-1', '1.2.3', '1.2.3.4.5', '', ' ', '::/129', '01.2.3.4', '1.2.3.4/ 8',
  ),
  fc.ipV6().filter((text) => text.includes('.')),
  fc.tuple(v4Cidr, injection).map(([c, i]) => `${c}${i}`),
  junk,
);
const cidr = mostly(goodCidr, badCidr, 8);
const cidrs = mostly(fc.array(cidr, { minLength: 1, maxLength: 4 }), fc.oneof(fc.constant([]), junk), 8);

const className = mostly(
  fc.constantFrom('db', 'web', 'bulk', 'default', 'a', 'A-1', 'x.y', 'x_y'),
  fc.oneof(
    fc.constantFrom('unshaped', '', '-x', 'a b', 'é', 'a'.repeat(33)),
    fc.tuple(fc.constantFrom('db', 'x'), injection).map(([n, i]) => `${n}${i}`),
    junk,
  ),
  8,
);

const shapedClass = mostly(
  fc.record({
    name: className,
    rate,
    ceil: sometimes(rate),
    burst: sometimes(size, 1, 4),
    priority: sometimes(mostly(fc.integer({ min: 0, max: 7 }), fc.oneof(fc.integer({ min: -2, max: 9 }), junk))),
    peers: sometimes(cidrs, 1, 1),
    match: sometimes(
      mostly(
        fc.record({
          protocol: fc.constantFrom('tcp', 'udp', 'sctp'),
          ports: sometimes(fc.array(fc.integer({ min: 1, max: 65535 }), { minLength: 1, maxLength: 4 }), 2, 1),
        }),
        fc.record(
          {
            protocol: mostly(fc.constantFrom('icmp', 'icmpv6'), fc.oneof(fc.constantFrom('TCP', 'gre'), junk), 2),
            ports: fc.array(fc.oneof(fc.integer({ min: -1, max: 70_000 }), junk), { maxLength: 3 }),
          },
          { requiredKeys: [] },
        ),
        4,
      ) as fc.Arbitrary<Record<string, unknown>>,
    ),
    flowid: sometimes(junk, 1, 20),
  }).map(({ match, ...rest }) => ({ ...rest, ...match })),
  junk,
  12,
);

const direction = mostly(
  fc.record({
    rate,
    ceil: sometimes(rate),
    burst: sometimes(size, 1, 4),
    default: sometimes(className, 1, 5),
    classes: sometimes(mostly(fc.array(shapedClass, { maxLength: 4 }), junk), 2, 1),
    handle: sometimes(junk, 1, 20),
  }),
  junk,
  12,
);

const bandwidth = mostly(
  fc.record({
    ingressRate: sometimes(referenceNumber, 1, 1),
    ingressBurst: sometimes(referenceNumber, 1, 1),
    egressRate: sometimes(referenceNumber, 1, 1),
    egressBurst: sometimes(referenceNumber, 1, 1),
    unshapedSubnets: sometimes(cidrs, 1, 5),
    shapedSubnets: sometimes(cidrs, 1, 5),
    egressLatency: sometimes(junk, 1, 20),
  }),
  junk,
  12,
);

const sandboxInterface = mostly(
  fc.constant({ name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/var/run/netns/x' }),
  fc.oneof(
    fc.record({ name: mostly(fc.constant('eth0'), junk), sandbox: mostly(fc.constant('/x'), junk) }, { requiredKeys: [] }),
    // a null entry (JSON allows it) is included
    junk,
  ),
  8,
);

const prevResult = mostly(
  fc.record({
    cniVersion: fc.constantFrom(...SUPPORTED_VERSIONS),
    interfaces: fc.array(sandboxInterface, { minLength: 1, maxLength: 3 }),
    ips: fc.constant([{ address: '198.18.0.2/24', interface: 0 }]),
  }),
  fc.oneof(fc.record({ interfaces: mostly(fc.array(sandboxInterface, { maxLength: 2 }), junk) }, { requiredKeys: [] }), junk),
  10,
);

/** Mostly silent, so warnings for thousands of configs do not flood the terminal. */
const logLevel = mostly(fc.constant('silent'), fc.constantFrom('fatal', 'bogus', 7), 10);

/** The reference plugin's keys come in rate/burst pairs; usually both, sometimes one alone. */
const referencePair = (direction: 'egress' | 'ingress'): fc.Arbitrary<Record<string, unknown>> =>
  mostly(
    fc.record({ [`${direction}Rate`]: referenceNumber, [`${direction}Burst`]: referenceNumber }),
    fc.oneof(fc.record({ [`${direction}Rate`]: referenceNumber }), fc.record({ [`${direction}Burst`]: referenceNumber })),
    8,
  ) as fc.Arbitrary<Record<string, unknown>>;

/** A whole config: a tree, the reference keys, runtime values only, or nothing to shape. */
const config = fc
  .record({
    cniVersion: mostly(fc.constantFrom(...SUPPORTED_VERSIONS), fc.oneof(fc.constantFrom('0.2.0', '2.0.0', ''), junk), 20),
    name: sometimes(mostly(fc.constant('fuzz'), junk, 20), 3, 1),
    type: mostly(fc.constant('tcqos'), junk, 30),
    egress: sometimes(direction, 1, 1),
    ingress: sometimes(direction, 1, 2),
    egressPair: sometimes(referencePair('egress'), 1, 3),
    ingressPair: sometimes(referencePair('ingress'), 1, 3),
    unshapedSubnets: sometimes(cidrs, 1, 8),
    shapedSubnets: sometimes(cidrs, 1, 8),
    maxBurst: sometimes(size, 1, 8),
    runtimeConfig: sometimes(mostly(fc.record({ bandwidth: sometimes(bandwidth, 4, 1), portMappings: sometimes(junk) }), junk), 1, 2),
    logLevel,
    capabilities: sometimes(mostly(fc.constant({ bandwidth: true }), junk), 1, 5),
    args: sometimes(mostly(fc.constant({ cni: { x: 1 } }), junk), 1, 8),
    // unknown keys, and a Go-style spelling of a reference key
    bandWidth: sometimes(junk, 1, 30),
    IngressRate: sometimes(referenceNumber, 1, 20),
    prevResult,
  })
  .map(({ egressPair, ingressPair, ...cfg }) => JSON.parse(JSON.stringify({ ...cfg, ...egressPair, ...ingressPair })) as Record<string, unknown>);

interface Tally {
  reasons: Map<string, number>;
  runs: number;
  passedOn: number;
  errors: Map<number, number>;
}

function newTally(): Tally {
  return { reasons: new Map(), runs: 0, passedOn: 0, errors: new Map() };
}

function printTally(label: string, tally: Tally): void {
  const codes = [...tally.errors.entries()].sort((a, b) => a[0] - b[0]).map(([code, n]) => `${code}:${n}`).join(' ');
  const top = [...tally.reasons.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([r, n]) => `\n    ${n}x ${r}`).join('');
  console.log(`[fuzz] ${label}: ${tally.runs} runs, ${tally.passedOn} passed prevResult on, error codes ${codes}\n  most frequent:${top}`);
}

/** The CNI invariant for one ADD. Returns a description of the violation, or undefined. */
async function checkAdd(stdin: string, input: Record<string, unknown> | undefined, tally: Tally): Promise<string | undefined> {
  tally.runs++;
  const result = await callMain(ENV, stdin);
  if (result.exitCode === 0) {
    tally.passedOn++;
    const sent = input?.['prevResult'];
    if (sent === undefined) return `exit 0 without a prevResult: ${result.stdout}`;
    if (result.stdout !== JSON.stringify(sent)) return `exit 0 but stdout ${result.stdout} is not the prevResult sent`;
    return undefined;
  }
  if (result.exitCode !== 1) return `exit code ${result.exitCode}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(result.stdout);
  } catch {
    return `stdout is not one JSON document: ${result.stdout}`;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return `stdout is not a JSON object: ${result.stdout}`;
  const error = parsed as Record<string, unknown>;
  const keys = Object.keys(error).sort();
  const allowed = ['cniVersion', 'code', 'details', 'msg'];
  if (keys.some((key) => !allowed.includes(key))) return `unexpected keys ${keys.join(',')}`;
  if (typeof error['cniVersion'] !== 'string' || typeof error['code'] !== 'number' || typeof error['msg'] !== 'string') {
    return `malformed error object ${result.stdout}`;
  }
  if ('details' in error && typeof error['details'] !== 'string') return `details is not a string: ${result.stdout}`;
  if (/\n\s+at .*\(.*:\d+:\d+\)/.test(result.stdout)) return `stack trace on stdout: ${result.stdout}`;
  tally.errors.set(error['code'] as number, (tally.errors.get(error['code'] as number) ?? 0) + 1);
  const reason = `${String(error['code'])} ${String(error['msg']).replace(/\[\d+\]/g, '[]').replace(/"[^"]*"|\d+/g, '#').slice(0, 70)}`;
  tally.reasons.set(reason, (tally.reasons.get(reason) ?? 0) + 1);
  if (error['code'] === 999) return `internal error 999: ${result.stdout}`;
  return undefined;
}

describe('fuzz: ADD through the CNI entry point never crashes', () => {
  it(`structured configs (${MAIN_RUNS} runs)`, async () => {
    const tally = newTally();
    await fc.assert(
      fc.asyncProperty(config, async (input) => {
        const problem = await checkAdd(JSON.stringify(input), input as Record<string, unknown>, tally);
        if (problem) throw new Error(problem);
      }),
      { numRuns: MAIN_RUNS, seed: SEED },
    );
    printTally('structured configs', tally);
    // The generator must reach deep: shaping configs get as far as the (missing) netns.
    expect(tally.errors.get(4) ?? 0).toBeGreaterThan(MAIN_RUNS / 50);
    expect(tally.errors.get(7) ?? 0).toBeGreaterThan(MAIN_RUNS / 10);
    expect(tally.passedOn).toBeGreaterThan(0);
  }, 60_000);

  it(`garbage on stdin (${GARBAGE_RUNS} runs)`, async () => {
    const tally = newTally();
    const stdin = fc.oneof(
      fc.jsonValue({ maxDepth: 4 }).map((value) => ({ text: JSON.stringify(value) ?? 'null', input: undefined })),
      fc.string({ maxLength: 200 }).map((text) => ({ text, input: undefined })),
      fc.string({ unit: 'binary', maxLength: 200 }).map((text) => ({ text, input: undefined })),
      fc.uint8Array({ maxLength: 200 }).map((bytes) => ({ text: Buffer.from(bytes).toString('latin1'), input: undefined })),
      // a valid config cut short at a random point
      fc.tuple(config, fc.nat()).map(([input, cut]) => {
        const text = JSON.stringify(input);
        return { text: text.slice(0, cut % (text.length + 1)), input: undefined };
      }),
      // a valid config with junk appended
      fc.tuple(config, fc.constantFrom('x', '}', ',', ' {}', '\u0000')).map(([input, tail]) => ({ text: JSON.stringify(input) + tail, input: undefined })),
    );
    await fc.assert(
      fc.asyncProperty(stdin, async ({ text, input }) => {
        // A complete, valid config object may legitimately pass (cut at full length): compare then.
        let whole: Record<string, unknown> | undefined = input;
        try {
          const parsed = JSON.parse(text) as unknown;
          if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) whole = parsed as Record<string, unknown>;
        } catch {
          // not JSON: must be an error
        }
        const problem = await checkAdd(text, whole, tally);
        if (problem) throw new Error(problem);
      }),
      { numRuns: GARBAGE_RUNS, seed: SEED },
    );
    printTally('garbage stdin', tally);
    expect(tally.errors.get(6) ?? 0).toBeGreaterThan(GARBAGE_RUNS / 4);
  }, 60_000);
});

// ---------------------------------------------------------------------------------------------
// The pure planner.

/** Biased towards configs that normalise, so the planner sees thousands of real trees. */
const validRate = goodRate;
const validCidr = goodCidr;

const plannable = fc
  .record(
    {
      egressRate: validRate,
      ingressRate: validRate,
      classes: fc.array(
        fc.record(
          {
            share: fc.integer({ min: 1, max: 100 }),
            ceilShare: fc.integer({ min: 0, max: 100 }),
            burst: fc.option(fc.integer({ min: 1, max: 10_000_000 }), { nil: undefined }),
            priority: fc.integer({ min: 0, max: 7 }),
            peers: fc.option(fc.array(validCidr, { minLength: 1, maxLength: 4 }), { nil: undefined }),
            protocol: fc.constantFrom('tcp', 'udp', 'sctp', 'icmp', 'icmpv6'),
            ports: fc.option(fc.array(fc.integer({ min: 1, max: 65535 }), { minLength: 1, maxLength: 3 }), { nil: undefined }),
          },
          { requiredKeys: ['share', 'ceilShare', 'priority', 'protocol'] },
        ),
        { maxLength: 6 },
      ),
      flatBurst: fc.integer({ min: 1, max: 2 ** 35 - 1 }),
      runtime: fc.option(
        fc.record({ rate: fc.integer({ min: 8_000, max: 10_000_000_000 }), burst: fc.integer({ min: 1, max: 2 ** 35 - 1 }) }),
        { nil: undefined },
      ),
      maxBurst: fc.option(fc.constantFrom('64KiB', '1MiB', '64MiB', '4000MiB'), { nil: undefined }),
      subnets: fc.option(fc.tuple(fc.constantFrom('unshapedSubnets', 'shapedSubnets'), fc.array(validCidr, { minLength: 1, maxLength: 3 })), {
        nil: undefined,
      }),
      style: fc.constantFrom('tree', 'flat', 'mixed'),
      ifname: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/),
      mtu: fc.integer({ min: 68, max: 65535 }),
    },
    { requiredKeys: ['egressRate', 'ingressRate', 'classes', 'flatBurst', 'style', 'ifname', 'mtu'] },
  )
  .map((g) => {
    const toBits = (r: number | string): number =>
      typeof r === 'number' ? r : Number.parseInt(r, 10) * ({ kbit: 1e3, mbit: 1e6, K: 1e3, M: 1e6 } as Record<string, number>)[r.replace(/^\d+/, '')]!;
    const tree = (total: number | string): object => {
      const bits = toBits(total);
      const sumShares = g.classes.reduce((s, c) => s + c.share, 0) * 1.25;
      return {
        rate: total,
        classes: g.classes.map((c, i) => {
          const rateBits = Math.max(8_000, Math.floor((bits * c.share) / sumShares));
          return {
            name: `c${i}`,
            rate: rateBits,
            ceil: Math.max(rateBits, Math.floor(bits * (c.ceilShare / 100))),
            ...(c.burst ? { burst: `${c.burst}b` } : {}),
            priority: c.priority,
            ...(c.peers ? { peers: c.peers, protocol: c.protocol, ...(c.ports && ['tcp', 'udp', 'sctp'].includes(c.protocol) ? { ports: c.ports } : {}) } : {}),
          };
        }),
      };
    };
    const cfg: Record<string, unknown> = { cniVersion: '1.0.0', type: 'tcqos' };
    if (g.style !== 'flat') cfg['egress'] = tree(g.egressRate);
    if (g.style === 'tree') cfg['ingress'] = tree(g.ingressRate);
    if (g.style !== 'tree') Object.assign(cfg, { ingressRate: toBits(g.ingressRate), ingressBurst: g.flatBurst });
    if (g.style === 'flat') Object.assign(cfg, { egressRate: toBits(g.egressRate), egressBurst: g.flatBurst });
    if (g.runtime) cfg['runtimeConfig'] = { bandwidth: { egressRate: g.runtime.rate, egressBurst: g.runtime.burst, ingressRate: g.runtime.rate, ingressBurst: g.runtime.burst } };
    if (g.maxBurst) cfg['maxBurst'] = g.maxBurst;
    if (g.subnets) cfg[g.subnets[0]] = g.subnets[1];
    return { cfg, ifname: g.ifname, mtu: g.mtu };
  });

/** A tc/ip word tcqos may emit: names, numbers with units, handles, hex, nothing else. */
const SAFE_TOKEN = /^[A-Za-z0-9][A-Za-z0-9_.:-]*$/;
/** HTB keeps a bucket as u32 ticks of 64 ns: tc silently wraps anything over ~274.9 s at the rate. */
const MAX_TC_BUCKET_SECONDS = (2 ** 32 * 64) / 1e9;

function planProblems(lines: readonly string[], ipLines: readonly string[]): string[] {
  const problems: string[] = [];
  for (const line of lines) {
    if (/[\n\r\0]/.test(line)) problems.push(`line holds a line break or NUL: ${JSON.stringify(line)}`);
    if (!/^(qdisc|class|filter) /.test(line)) problems.push(`line does not start with qdisc/class/filter: ${line}`);
    const bad = line.split(' ').filter((word) => !SAFE_TOKEN.test(word));
    if (bad.length) problems.push(`unsafe words ${JSON.stringify(bad)} in: ${line}`);
  }
  for (const line of ipLines) {
    if (/[\n\r\0]/.test(line) || !/^link /.test(line)) problems.push(`bad ip line ${JSON.stringify(line)}`);
    const bad = line.split(' ').filter((word) => !SAFE_TOKEN.test(word));
    if (bad.length) problems.push(`unsafe words ${JSON.stringify(bad)} in: ${line}`);
  }
  return problems;
}

/** Buckets tc cannot store (it would wrap them silently): config refuses or clamps them, so none may reach a line. */
function bucketProblems(lines: readonly string[]): string[] {
  const problems: string[] = [];
  for (const line of lines.filter((l) => l.startsWith('class '))) {
    const number = (key: string): number => Number(new RegExp(` ${key} (\\d+)`).exec(line)?.[1]);
    const rateBytes = number('rate') / 8; // "rate NNNbit"
    const ceilBytes = Number(/ ceil (\d+)bit/.exec(line)?.[1]) / 8;
    if (number('burst') / rateBytes > MAX_TC_BUCKET_SECONDS || number('cburst') / ceilBytes > MAX_TC_BUCKET_SECONDS) {
      problems.push(`bucket beyond ${MAX_TC_BUCKET_SECONDS.toFixed(1)} s: ${line}`);
    }
  }
  return problems;
}

describe('fuzz: the planner only writes one safe command per line', () => {
  it(`plans for configs that normalise (${PLAN_RUNS} runs)`, async () => {
    let normalised = 0;
    let refused = 0;
    let lineCount = 0;
    const reasons = new Map<string, number>();
    const input = fc.oneof({ weight: 4, arbitrary: plannable }, { weight: 1, arbitrary: config.map((cfg) => ({ cfg, ifname: 'eth0', mtu: 1500 })) });
    await fc.assert(
      fc.asyncProperty(input, async ({ cfg, ifname, mtu }) => {
        let normalized;
        try {
          normalized = await normalizeConfig(cfg as Record<string, unknown>);
        } catch (error) {
          // Refusals must be ConfigErrors naming a field, never a TypeError from inside.
          if (!(error instanceof ConfigError)) throw new Error(`normalizeConfig threw ${String(error)} for ${JSON.stringify(cfg)}`);
          refused++;
          const reason = (error as Error).message.replace(/\[\d+\]/g, '[]').replace(/"[^"]*"|\d+/g, '#').slice(0, 60);
          reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
          return;
        }
        normalised++;
        const plan = planAttachment(normalized.policy, ifname, mtu);
        const lines = setupLines(plan);
        const ipLines = prepareLines(plan.ifname, plan.ifb, plan.ingress !== undefined);
        lineCount += lines.length + ipLines.length;
        const problems = planProblems(lines, ipLines);
        if (problems.length) throw new Error(`${problems.join('\n')}\nconfig: ${JSON.stringify(cfg)}`);
        const buckets = bucketProblems(lines);
        if (buckets.length) throw new Error(`${buckets.join('\n')}\nconfig: ${JSON.stringify(cfg)}`);
      }),
      { numRuns: PLAN_RUNS, seed: SEED },
    );
    console.log(`[fuzz] planner: ${PLAN_RUNS} runs, ${normalised} normalised (${lineCount} tc/ip lines checked), ${refused} refused`);
    const top = [...reasons.entries()].sort((a, b) => b[1] - a[1]).slice(0, 6);
    console.log(`[fuzz] planner: most frequent refusals:${top.map(([r, n]) => `\n    ${n}x ${r}`).join('')}`);
    expect(normalised).toBeGreaterThan(PLAN_RUNS / 2);
  }, 60_000);
});

// ---------------------------------------------------------------------------------------------
// Regression tests for the bugs the fuzzing found.

describe('bugs found by fuzzing stay fixed', () => {
  it('prevResult.interfaces with a null entry is a code 7 error, not internal error 999', async () => {
    const stdin = JSON.stringify({
      cniVersion: '1.0.0', type: 'tcqos', egressRate: 1_000_000, egressBurst: 100_000, prevResult: { interfaces: [null] },
    });
    const result = await callMain(ENV, stdin);
    expect(result.json).toMatchObject({ code: 7 });
  });

  it('a reference-style burst tc cannot hold (egressBurst 2^32-1 bits at 8 kbit/s) is refused', async () => {
    await expect(normalizeConfig({ cniVersion: '1.0.0', type: 'tcqos', egressRate: 8_000, egressBurst: 2 ** 32 - 1 })).rejects.toThrow(/egressBurst/);
  });

  it('a runtime rate that shrinks a class does not leave it a bucket tc cannot hold', async () => {
    const { policy } = await normalizeConfig({
      cniVersion: '1.0.0', type: 'tcqos',
      egress: { rate: '100mbit', classes: [{ name: 'a', rate: '50mbit', burst: '100MiB' }] },
      runtimeConfig: { bandwidth: { egressRate: 16_000, egressBurst: 80_000_000 } },
    });
    expect(bucketProblems(setupLines(planAttachment(policy, 'eth0', 1500)))).toEqual([]);
  });
});
