/**
 * A corpus of hostile and broken input, run through src/main exactly as the binary runs it.
 *
 * Every case must end in one CNI error: exit code 1, exactly one JSON document on stdout holding a
 * numeric `code` and a `msg` that names the offending field or variable, and no stack trace. Cases
 * that carry a tc command in a value (a "\n" followed by `qdisc del dev eth0 root`, say) must be
 * refused before anything is planned. A broken config must never make a pod undeletable: DEL of
 * every config case succeeds.
 *
 * cni-protocol.test.ts and config.test.ts already hold a few of these; this corpus extends them
 * (the netns cases that need a real namespace are in test/integration/robustness.test.ts).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_STDIN_BYTES } from '../../src/cni/stdin.ts';
import { normalizeConfig } from '../../src/config/normalize.ts';
import { callMain, type MainResult } from '../helpers/main.ts';

const ENV = {
  CNI_CONTAINERID: 'hostile',
  CNI_NETNS: '/var/run/netns/tcqos-hostile-does-not-exist',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin',
};

const SMUGGLED = '\nqdisc del dev eth0 root';

const prevResult = {
  cniVersion: '1.0.0',
  interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/var/run/netns/x' }],
  ips: [{ address: '198.18.0.2/24', interface: 0 }],
};
// logLevel silent: warnings of the odd-but-valid configs would only clutter the test output
const base = { cniVersion: '1.0.0', name: 'hostile', type: 'tcqos', logLevel: 'silent', prevResult };
const conf = (extra: Record<string, unknown>): string => JSON.stringify({ ...base, ...extra });
const egress = (direction: Record<string, unknown>): string => conf({ egress: { rate: '50mbit', ...direction } });
const oneClass = (cls: Record<string, unknown>): string => egress({ classes: [{ name: 'db', rate: '10mbit', ...cls }] });
const peers = (...list: unknown[]): string => oneClass({ peers: list });

let inputsTried = 0;
afterAll(() => {
  console.log(`[hostile-input] ${inputsTried} hostile inputs tried (each one a full CNI invocation)`);
});

/** What must never reach a msg raw: C0 controls (line breaks), DEL, C1 controls (U+0085 breaks lines), U+2028/U+2029. */
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

async function invoke(command: string, env: Record<string, string | undefined>, stdin: string | Buffer): Promise<MainResult> {
  inputsTried++;
  const clean = Object.fromEntries(Object.entries({ CNI_COMMAND: command, ...env }).filter(([, v]) => v !== undefined)) as Record<string, string>;
  return callMain(clean, stdin);
}

/** The contract every refusal honours. */
function expectCniError(result: MainResult, code: number, field: RegExp): void {
  const context = `stdout: ${result.stdout}`;
  expect(result.exitCode, context).toBe(1);
  // exactly one JSON document, and it is an object
  let parsed: unknown;
  expect(() => (parsed = JSON.parse(result.stdout)), context).not.toThrow();
  expect(typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed), context).toBe(true);
  expect(result.stdout.trim().split('\n'), context).toHaveLength(1);
  const error = parsed as Record<string, unknown>;
  expect(Object.keys(error).every((key) => ['cniVersion', 'code', 'msg', 'details'].includes(key)), context).toBe(true);
  expect(typeof error['cniVersion'], context).toBe('string');
  expect(error['code'], context).toBe(code);
  expect(typeof error['msg'], context).toBe('string');
  expect(String(error['msg'])).toMatch(field);
  expect(String(error['msg']), 'msg repeats a hostile value raw').not.toMatch(UNPRINTABLE);
  // no stack trace, and never the internal-error code
  expect(result.stdout, context).not.toMatch(/\n\s+at |\bat .*\.(ts|js):\d+:\d+/);
  expect(error['code']).not.toBe(999);
}

type Case = readonly [name: string, stdin: string | Buffer, code: number, field: RegExp];

// ---------------------------------------------------------------------------------------------
// Stdin that is not a config.

const valid = egress({ classes: [{ name: 'db', rate: '10mbit', peers: ['198.18.0.3/32'], protocol: 'tcp', ports: [5432] }] });
/** Every 5th prefix of a valid config: all are truncated JSON. */
const truncations: Case[] = Array.from({ length: Math.ceil(valid.length / 5) }, (_, i) => [
  `truncated at byte ${i * 5} of ${valid.length}`,
  valid.slice(0, i * 5),
  6,
  /network configuration on stdin is not valid JSON/,
]);

const padTo = (text: string, bytes: number): string => text.slice(0, -1) + ' '.repeat(bytes - Buffer.byteLength(text)) + '}';

const stdinCases: Case[] = [
  ...truncations,
  ['the JSON literal null', 'null', 6, /must be a JSON object/],
  ['the JSON literal true', 'true', 6, /must be a JSON object/],
  ['a number', '42', 6, /must be a JSON object/],
  ['a string', '"tcqos"', 6, /must be a JSON object/],
  ['an empty array', '[]', 6, /must be a JSON object/],
  ['two JSON documents', `${valid}\n${valid}`, 6, /not valid JSON/],
  ['trailing garbage', `${valid}x`, 6, /not valid JSON/],
  ['a byte-order mark before the JSON', `\uFEFF${valid}`, 6, /not valid JSON/],
  ['NUL bytes', '\0\0\0\0', 6, /not valid JSON/],
  ['invalid UTF-8', Buffer.from([0xff, 0xfe, 0x7b, 0x7d]), 6, /not valid JSON/],
  ['binary garbage', Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 37) % 256)), 6, /not valid JSON/],
  ['a YAML config', 'cniVersion: 1.0.0\ntype: tcqos\n', 6, /not valid JSON/],
  ['single-quoted JSON', valid.replaceAll('"', "'"), 6, /not valid JSON/],
  ['JSON with a comment', `// tcqos\n${valid}`, 6, /not valid JSON/],
  ['a config of exactly 1 MiB + 1 byte', padTo(valid, MAX_STDIN_BYTES + 1), 6, /is 1048577 bytes, more than the 1048576 accepted/],
  ['a config of 8 MiB', padTo(valid, 8 * MAX_STDIN_BYTES), 6, /more than the 1048576 accepted/],
  ['8 MiB of NUL bytes', Buffer.alloc(8 * MAX_STDIN_BYTES), 6, /more than the 1048576 accepted/],
];

// ---------------------------------------------------------------------------------------------
// cniVersion (code 1).

const versionCases: Case[] = [
  ['cniVersion as a number', conf({ cniVersion: 1 }), 1, /cniVersion/],
  ['cniVersion null', conf({ cniVersion: null }), 1, /cniVersion/],
  ['cniVersion as an array', conf({ cniVersion: ['1.0.0'] }), 1, /cniVersion/],
  ['cniVersion "1.0"', conf({ cniVersion: '1.0' }), 1, /cniVersion "1\.0" is not supported/],
  ['cniVersion with a trailing space', conf({ cniVersion: '1.0.0 ' }), 1, /cniVersion "1\.0\.0 " is not supported/],
  ['cniVersion "v1.0.0"', conf({ cniVersion: 'v1.0.0' }), 1, /cniVersion "v1\.0\.0" is not supported/],
  ['cniVersion with a smuggled line', conf({ cniVersion: `1.0.0${SMUGGLED}` }), 1, /cniVersion "1\.0\.0\\n.*" is not supported/],
  ['no cniVersion', JSON.stringify({ type: 'tcqos', prevResult }), 1, /cniVersion is not set/],
];

// ---------------------------------------------------------------------------------------------
// Wrong types (code 7, the schema names the field).

const typeCases: Case[] = [
  ['type as a number', conf({ type: 5 }), 7, /^invalid tcqos configuration: type: must be string/],
  ['no type', JSON.stringify({ cniVersion: '1.0.0', prevResult }), 7, /type: is required/],
  ['name as an object', conf({ name: {} }), 7, /name: must be string/],
  ['egress as a string', conf({ egress: '10mbit' }), 7, /egress: must be object/],
  ['egress as an array', conf({ egress: [] }), 7, /egress: must be object/],
  ['egress null', conf({ egress: null }), 7, /egress: must be object/],
  ['ingress as a number', conf({ ingress: 10_000_000 }), 7, /ingress: must be object/],
  ['egress.rate null', egress({ rate: null }), 7, /egress\.rate: must be integer,string/],
  ['egress.rate as an array', egress({ rate: ['10mbit'] }), 7, /egress\.rate: must be integer,string/],
  ['egress.rate as an object', egress({ rate: { mbit: 10 } }), 7, /egress\.rate: must be integer,string/],
  ['egress.rate as a float', egress({ rate: 1_000_000.5 }), 7, /egress\.rate: must be integer,string/],
  ['egress.classes as an object', egress({ classes: { db: {} } }), 7, /egress\.classes: must be array/],
  ['a class as a string', egress({ classes: ['db'] }), 7, /egress\.classes\[0\]: must be object/],
  ['a class without a rate', egress({ classes: [{ name: 'db' }] }), 7, /egress\.classes\[0\]\.rate: is required/],
  ['a class without a name', egress({ classes: [{ rate: '1mbit' }] }), 7, /egress\.classes\[0\]\.name: is required/],
  ['a class name as a number', oneClass({ name: 5 }), 7, /egress\.classes\[0\]\.name: must be string/],
  ['peers as a string', oneClass({ peers: '198.18.0.1' }), 7, /egress\.classes\[0\]\.peers: must be array/],
  ['a peer as a number', peers(3_323_068_417), 7, /egress\.classes\[0\]\.peers\[0\]: must be string/],
  ['ports as strings', oneClass({ peers: ['198.18.0.1'], protocol: 'tcp', ports: ['80'] }), 7, /egress\.classes\[0\]\.ports\[0\]: must be integer/],
  ['port 0', oneClass({ peers: ['198.18.0.1'], protocol: 'tcp', ports: [0] }), 7, /egress\.classes\[0\]\.ports\[0\]: must be >= 1/],
  ['port 65536', oneClass({ peers: ['198.18.0.1'], protocol: 'tcp', ports: [65_536] }), 7, /egress\.classes\[0\]\.ports\[0\]: must be <= 65535/],
  ['an empty port list', oneClass({ peers: ['198.18.0.1'], protocol: 'tcp', ports: [] }), 7, /egress\.classes\[0\]\.ports: must NOT have fewer than 1/],
  ['33 ports', oneClass({ peers: ['198.18.0.1'], protocol: 'tcp', ports: Array.from({ length: 33 }, (_, i) => i + 1) }), 7, /egress\.classes\[0\]\.ports: must NOT have more than 32/],
  ['priority as a string', oneClass({ priority: '1' }), 7, /egress\.classes\[0\]\.priority: must be integer/],
  ['priority -1', oneClass({ priority: -1 }), 7, /egress\.classes\[0\]\.priority: must be >= 0/],
  ['protocol "gre"', oneClass({ peers: ['198.18.0.1'], protocol: 'gre' }), 7, /egress\.classes\[0\]\.protocol: must be equal to one of the allowed values/],
  ['protocol in capitals', oneClass({ peers: ['198.18.0.1'], protocol: 'TCP' }), 7, /egress\.classes\[0\]\.protocol/],
  ['runtimeConfig as an array', conf({ runtimeConfig: [] }), 7, /runtimeConfig: must be object/],
  ['runtimeConfig.bandwidth as a string', conf({ runtimeConfig: { bandwidth: '10M' } }), 7, /runtimeConfig\.bandwidth: must be object/],
  ['egressRate as a string', conf({ egressRate: '1000000', egressBurst: 100_000 }), 7, /^invalid tcqos configuration: egressRate: must be integer/],
  ['egressRate as a float', conf({ egressRate: 1_000_000.5, egressBurst: 100_000 }), 7, /egressRate: must be integer/],
  ['egressBurst as a boolean', conf({ egressRate: 1_000_000, egressBurst: true }), 7, /egressBurst: must be integer/],
  ['a runtime rate as a string', conf({ runtimeConfig: { bandwidth: { egressRate: '10M', egressBurst: 1 } } }), 7, /runtimeConfig\.bandwidth\.egressRate: must be integer/],
  ['logLevel "verbose"', conf({ logLevel: 'verbose' }), 7, /logLevel: must be equal to one of the allowed values/],
  ['a relative logFile', conf({ logFile: 'tcqos.log' }), 7, /logFile: must be an absolute path/],
  ['logFile as a number', conf({ logFile: 5 }), 7, /logFile: must be string/],
  ['prevResult as a string', conf({ prevResult: 'eth0' }), 7, /prevResult: must be object/],
  ['prevResult as an array', conf({ prevResult: [] }), 7, /prevResult: must be object/],
  ['capabilities as an array', conf({ capabilities: ['bandwidth'] }), 7, /capabilities: must be object/],
  ['args as a string', conf({ args: 'K8S_POD_NAME=x' }), 7, /args: must be object/],
  ['maxBurst as a boolean', conf({ maxBurst: true }), 7, /maxBurst: must be integer,string/],
  ['cniVersions as a string', conf({ cniVersions: '1.0.0' }), 7, /cniVersions: must be array/],
  [
    'an array nested 200000 deep',
    `{"cniVersion":"1.0.0","type":"tcqos","args":${'['.repeat(200_000)}${']'.repeat(200_000)}}`,
    7,
    /args: must be object/,
  ],
  [
    'a prevResult nested 200000 deep',
    `{"cniVersion":"1.0.0","type":"tcqos","egressRate":1000000,"egressBurst":80000,"prevResult":{"interfaces":[{"name":"eth0"}],"x":${'['.repeat(200_000)}${']'.repeat(200_000)}}}`,
    7,
    /prevResult has no interface "eth0" inside the pod sandbox/,
  ],
];

// ---------------------------------------------------------------------------------------------
// Rates (code 7, named by field).

const badRates: ReadonlyArray<[unknown, RegExp]> = [
  [-1, /below the lowest shapeable rate|must be/],
  [0, /0 is below the lowest shapeable rate/],
  ['0', /"?0"? is below the lowest shapeable rate/],
  ['-1mbit', /is not a number with an optional unit/],
  ['NaN', /is not a number with an optional unit/],
  ['Infinity', /is not a number with an optional unit/],
  [1e30, /is above the highest rate accepted/],
  [2 ** 53 + 2, /is above the highest rate accepted/],
  ['1e30', /is not a number with an optional unit/],
  ['1e3mbit', /is not a number with an optional unit/],
  ['7999bit', /below the lowest shapeable rate \(8000 bit\/s\)/],
  ['0.5kbit', /below the lowest shapeable rate/],
  ['101gbit', /above the highest rate accepted/],
  ['10mbps', /"mbps" means BYTES per second/],
  ['10kbps', /"kbps" means BYTES per second/],
  ['10 furlongs', /unknown rate unit "furlongs"/],
  ['١٠mbit', /is not a number with an optional unit/],
  ['10mbit;', /is not a number with an optional unit/],
  [`10mbit${SMUGGLED}`, /is not a number with an optional unit/],
  ['10mbit qdisc del dev eth0 root', /is not a number with an optional unit/],
  ['', /is not a number with an optional unit/],
  ['9'.repeat(33), /must NOT have more than 32 characters/],
  ['0x10mbit', /is not a number with an optional unit/],
];

const rateCases: Case[] = badRates.flatMap(([value, problem]): Case[] => [
  [`egress.rate ${JSON.stringify(value)}`, egress({ rate: value }), 7, new RegExp(`egress\\.rate: [\\s\\S]*(${problem.source})`)],
  [`egress.ceil ${JSON.stringify(value)}`, egress({ ceil: value }), 7, new RegExp(`egress\\.ceil: [\\s\\S]*(${problem.source})`)],
  [`a class rate ${JSON.stringify(value)}`, oneClass({ rate: value }), 7, new RegExp(`egress\\.classes\\[0\\]\\.rate: [\\s\\S]*(${problem.source})`)],
  [`an ingress class ceil ${JSON.stringify(value)}`, conf({ ingress: { rate: '50mbit', classes: [{ name: 'db', rate: '10mbit', ceil: value }] } }), 7, new RegExp(`ingress\\.classes\\[0\\]\\.ceil: [\\s\\S]*(${problem.source})`)],
]);

const referenceRateCases: Case[] = [
  ['egressRate -1', conf({ egressRate: -1, egressBurst: 1000 }), 7, /^invalid tcqos configuration: egressRate: must be >= 0/],
  ['egressRate 1e30', conf({ egressRate: 1e30, egressBurst: 1000 }), 7, /egressRate: 1e\+30 is above the highest rate accepted/],
  ['egressRate 7999', conf({ egressRate: 7999, egressBurst: 1000 }), 7, /egressRate: 7999 is below the lowest shapeable rate/],
  ['ingressRate without ingressBurst', conf({ ingressRate: 1_000_000 }), 7, /ingressBurst: must be set when ingressRate is/],
  ['a runtime egressRate of -1', conf({ runtimeConfig: { bandwidth: { egressRate: -1, egressBurst: 1 } } }), 7, /runtimeConfig\.bandwidth\.egressRate: must be >= 0/],
  ['a runtime ingressRate of 1e30', conf({ runtimeConfig: { bandwidth: { ingressRate: 1e30, ingressBurst: 1000 } } }), 7, /runtimeConfig\.bandwidth\.ingressRate: 1e\+30 is above/],
  ['a runtime ingressBurst without rate', conf({ runtimeConfig: { bandwidth: { ingressBurst: 1000 } } }), 7, /runtimeConfig\.bandwidth\.ingressRate: must be set when ingressBurst is/],
  ['a class ceil below its rate', oneClass({ rate: '10mbit', ceil: '9mbit' }), 7, /egress\.classes\[0\]\.ceil: 9mbit is below the class's rate 10mbit/],
  ['a direction ceil below its rate', egress({ ceil: '1mbit' }), 7, /egress\.ceil: 1mbit is below egress\.rate 50mbit/],
  ['a class ceil above the direction ceil', oneClass({ ceil: '60mbit' }), 7, /egress\.classes\[0\]\.ceil: 60mbit is above egress\.ceil 50mbit/],
  ['class rates above the direction rate', egress({ classes: [{ name: 'a', rate: '30mbit' }, { name: 'b', rate: '30mbit' }] }), 7, /egress\.classes: class rates add up to 60mbit, above egress\.rate 50mbit/],
];

// ---------------------------------------------------------------------------------------------
// Bursts tc cannot express or that are ambiguous (code 7).

const badBursts: ReadonlyArray<[unknown, RegExp]> = [
  ['10000MiB', /burst cannot be more than 4GB/],
  ['5GiB', /burst cannot be more than 4GB/],
  [0, /is not a positive size/],
  [-8, /is not a positive size/],
  ['0b', /is not a positive size/],
  ['10kb', /tc reads "kb" as kibibytes/],
  ['10mb', /tc reads "mb" as mebibytes/],
  ['10k', /unknown size unit "k"/],
  ['1e3b', /is not a number with an optional unit/],
  ['1.5', /unknown size unit ""/],
  [`1KiB${SMUGGLED}`, /is not a number with an optional unit/],
  ['x'.repeat(33), /must NOT have more than 32 characters/],
];

const burstCases: Case[] = [
  ...badBursts.flatMap(([value, problem]): Case[] => [
    [`egress.burst ${JSON.stringify(value)}`, egress({ burst: value }), 7, new RegExp(`egress\\.burst: [\\s\\S]*(${problem.source})`)],
    [`a class burst ${JSON.stringify(value)}`, oneClass({ burst: value }), 7, new RegExp(`egress\\.classes\\[0\\]\\.burst: [\\s\\S]*(${problem.source})`)],
    [`maxBurst ${JSON.stringify(value)}`, conf({ maxBurst: value, egressRate: 1_000_000, egressBurst: 80_000 }), 7, new RegExp(`maxBurst: [\\s\\S]*(${problem.source})`)],
  ]),
  ['a burst of 201 s at the rate', egress({ rate: '8kbit', burst: '201000b' }), 7, /egress\.burst: is 201 s of traffic at the rate; tc cannot hold more than 200 s/],
  ['a class burst of 1000 s', oneClass({ rate: '8kbit', burst: '1000000b' }), 7, /egress\.classes\[0\]\.burst: is 1000 s of traffic/],
  ['egressBurst of 2^35 bits (4 GiB)', conf({ egressRate: 1_000_000_000, egressBurst: 2 ** 35 }), 7, /egressBurst: .*burst cannot be more than 4GB/],
  ['a runtime burst of 2^35 bits', conf({ runtimeConfig: { bandwidth: { egressRate: 1_000_000, egressBurst: 2 ** 35 } } }), 7, /runtimeConfig\.bandwidth\.egressBurst: .*4GB/],
  ['egressBurst -1', conf({ egressRate: 1_000_000, egressBurst: -1 }), 7, /egressBurst: must be >= 0/],
];

// ---------------------------------------------------------------------------------------------
// CIDRs (code 7): invalid, IPv4-mapped, and carrying a second command.

const badCidrs: ReadonlyArray<[string, RegExp]> = [
  ['198.18.0.300/32', /is not a valid IPv4 CIDR/],
  ['198.18.0.0/33', /is not a valid IPv4 CIDR/],
  ['198.18.0.0/-1', /is not a valid IPv4 CIDR/],
  ['198.18.0.0/', /is not a valid IPv4 CIDR/],
  ['198.18.0.0/24/8', /is not a valid IPv4 CIDR/],
  ['1.2.3', /is not a valid IPv4 CIDR/],
  ['1.2.3.4.5', /is not a valid IPv4 CIDR/],
  ['127.1', /is not a valid IPv4 CIDR/],
  ['0x7f.0.0.1', /is not a valid IPv4 CIDR/],
  ['', /is not a valid IPv4 CIDR/],
  [' ', /is not a valid IPv4 CIDR/],
  ['::/129', /is not a valid IPv6 CIDR/],
  ['2001:db8::/64/1', /is not a valid IPv6 CIDR/],
  ['2001:db8:::1', /is not a valid IPv6 CIDR/],
  ['fe80::1%eth0', /is not a valid IPv6 CIDR/],
  ['fe80::1%eth0/64', /is not a valid IPv6 CIDR/],
  ['::ffff:198.18.0.1', /IPv4-mapped IPv6 address/],
  ['::FFFF:198.18.0.1/128', /IPv4-mapped IPv6 address/],
  ['::ffff:198.18.0.0/120', /IPv4-mapped IPv6 address/],
  ['::ffff:c612:1/128', /IPv4-mapped IPv6 address/],
  ['0:0:0:0:0:ffff:c612:1/128', /IPv4-mapped IPv6 address/],
  ['::ffff:0:0/96', /IPv4-mapped IPv6 address/],
  ['198.18.0.1\n', /is not a valid IPv4 CIDR/],
  [`198.18.0.1/32${SMUGGLED}`, /is not a valid IPv4 CIDR/],
  [`2001:db8::/64${SMUGGLED}`, /is not a valid IPv6 CIDR/],
  ['198.18.0.1/32 flowid 7c05:1', /is not a valid IPv(4|6) CIDR/],
  ['198.18.0.1/32;', /is not a valid IPv4 CIDR/],
  ['198.18.0.1/32#', /is not a valid IPv4 CIDR/],
  ['1'.repeat(65), /must NOT have more than 64 characters/],
];

const cidrCases: Case[] = badCidrs.flatMap(([text, problem]): Case[] => {
  const long = /must NOT have more/.test(problem.source);
  const at = (field: string): RegExp => new RegExp(`${field.replace(/[.[\]]/g, '\\$&')}${long ? '' : '\\[0\\]'}: [\\s\\S]*(${problem.source})`);
  return [
    [`peer ${JSON.stringify(text)}`, peers(text), 7, long ? /egress\.classes\[0\]\.peers\[0\]: must NOT have more/ : at('egress.classes[0].peers')],
    [`unshapedSubnets ${JSON.stringify(text)}`, conf({ egressRate: 1_000_000, egressBurst: 80_000, unshapedSubnets: [text] }), 7, long ? /unshapedSubnets\[0\]: must NOT have more/ : at('unshapedSubnets')],
    [`a runtime shapedSubnets ${JSON.stringify(text)}`, conf({ runtimeConfig: { bandwidth: { egressRate: 1_000_000, egressBurst: 80_000, shapedSubnets: [text] } } }), 7, long ? /runtimeConfig\.bandwidth\.shapedSubnets\[0\]: must NOT have more/ : at('runtimeConfig.bandwidth.shapedSubnets')],
  ];
});

const cidrListCases: Case[] = [
  ['an empty peer list', oneClass({ peers: [] }), 7, /egress\.classes\[0\]\.peers: must NOT have fewer than 1 items/],
  ['257 peers', oneClass({ peers: Array.from({ length: 257 }, (_, i) => `198.18.${i >> 8}.${i & 255}`) }), 7, /egress\.classes\[0\]\.peers: must NOT have more than 256 items/],
  ['the second peer bad', peers('198.18.0.1', '198.18.0.999'), 7, /egress\.classes\[0\]\.peers\[1\]: "198\.18\.0\.999" is not a valid IPv4 CIDR/],
  ['unshapedSubnets as a string', conf({ unshapedSubnets: '198.18.0.0/24' }), 7, /unshapedSubnets: must be array/],
];

// ---------------------------------------------------------------------------------------------
// Unknown fields (code 7): a typo or someone else's key is refused, never ignored.

const unknownFieldCases: Case[] = [
  ['a misspelt direction', conf({ egres: { rate: '10mbit' } }), 7, /^invalid tcqos configuration: egres: unknown key/],
  ['the reference runtime key at top level', conf({ bandwidth: { egressRate: 1 } }), 7, /^invalid tcqos configuration: bandwidth: unknown key/],
  ['"Egress" (only the reference keys are read case-insensitively)', conf({ Egress: { rate: '10mbit' } }), 7, /Egress: unknown key/],
  ['"constructor"', conf({ constructor: {} }), 7, /constructor: unknown key/],
  ['"toString"', conf({ toString: 'x' }), 7, /toString: unknown key/],
  ['an unknown direction key', egress({ handle: '1:' }), 7, /egress\.handle: unknown key/],
  ['"__proto__" inside a direction', `{"cniVersion":"1.0.0","type":"tcqos","egress":{"rate":"10mbit","__proto__":{"classes":[]}},"prevResult":${JSON.stringify(prevResult)}}`, 7, /egress\.__proto__: unknown key/],
  ['an unknown class key', oneClass({ flowid: '7c05:1' }), 7, /egress\.classes\[0\]\.flowid: unknown key/],
  ['an unknown runtime bandwidth key', conf({ runtimeConfig: { bandwidth: { egressRate: 1_000_000, egressBurst: 80_000, egressLatency: 25 } } }), 7, /runtimeConfig\.bandwidth\.egressLatency: unknown key/],
  ['a key of the seed model spelt "qdisc"', conf({ qdisc: 'htb' }), 7, /qdisc: unknown key/],
];

// ---------------------------------------------------------------------------------------------
// Classes: duplicates, reserved names, bad defaults (code 7).

const classCases: Case[] = [
  ['a duplicate class name', egress({ classes: [{ name: 'db', rate: '1mbit' }, { name: 'web', rate: '1mbit' }, { name: 'db', rate: '1mbit' }] }), 7, /egress\.classes\[2\]\.name: "db" is already the name of another class/],
  ['a duplicate class in ingress', conf({ ingress: { rate: '50mbit', classes: [{ name: 'x', rate: '1mbit' }, { name: 'x', rate: '2mbit' }] } }), 7, /ingress\.classes\[1\]\.name: "x" is already/],
  ['the reserved name "unshaped"', oneClass({ name: 'unshaped' }), 7, /egress\.classes\[0\]\.name: "unshaped" is reserved/],
  ['a default naming no class', egress({ default: 'nope', classes: [{ name: 'db', rate: '1mbit' }] }), 7, /egress\.default: names no class/],
  ['65 classes', egress({ rate: '10gbit', classes: Array.from({ length: 65 }, (_, i) => ({ name: `c${i}`, rate: '1mbit' })) }), 7, /egress\.classes: must NOT have more than 64 items/],
  ['a class name of 33 characters', oneClass({ name: 'a'.repeat(33) }), 7, /egress\.classes\[0\]\.name: must NOT have more than 32 characters/],
  ['an empty class name', oneClass({ name: '' }), 7, /egress\.classes\[0\]\.name: must NOT have fewer than 1 characters/],
  ['a class name starting with "-"', oneClass({ name: '-db' }), 7, /egress\.classes\[0\]\.name: must match pattern/],
  ['a class name with a slash', oneClass({ name: 'a/b' }), 7, /egress\.classes\[0\]\.name: must match pattern/],
  ['a class name ".."', oneClass({ name: '..' }), 7, /egress\.classes\[0\]\.name: must match pattern/],
  ['a non-ASCII class name', oneClass({ name: 'dé' }), 7, /egress\.classes\[0\]\.name: must match pattern/],
  ['ports without protocol', oneClass({ peers: ['198.18.0.1'], ports: [80] }), 7, /egress\.classes\[0\]\.ports: needs "protocol" beside it/],
  ['ports with icmp', oneClass({ peers: ['198.18.0.1'], protocol: 'icmp', ports: [80] }), 7, /egress\.classes\[0\]\.ports: ports need protocol tcp, udp or sctp/],
  ['a protocol without peers', oneClass({ protocol: 'udp' }), 7, /egress\.classes\[0\]\.peers: is required when protocol or ports are given/],
  ['classes that leave nothing for unmatched traffic', egress({ rate: '10mbit', classes: [{ name: 'a', rate: '10mbit' }] }), 7, /egress\.default: the classes take all of egress\.rate/],
  ['both a tree and the reference keys', conf({ egress: { rate: '10mbit' }, egressRate: 1_000_000, egressBurst: 10_000 }), 7, /egressRate: use either "egressRate" or "egress", not both/],
  ['unshapedSubnets and shapedSubnets', conf({ egressRate: 1_000_000, egressBurst: 80_000, unshapedSubnets: ['198.18.0.0/24'], shapedSubnets: ['198.18.1.0/24'] }), 7, /shapedSubnets: unshapedSubnets and shapedSubnets cannot both be set/],
];

// ---------------------------------------------------------------------------------------------
// Values crafted to smuggle a second line into a tc -batch script (code 7, refused before planning).

const smuggleCases: Case[] = [
  ['a class name carrying a tc command', oneClass({ name: `db${SMUGGLED}` }), 7, /egress\.classes\[0\]\.name: must match pattern/],
  ['a class name with a space and a command', oneClass({ name: 'db qdisc del dev eth0 root' }), 7, /egress\.classes\[0\]\.name: must match pattern/],
  ['a class name with a carriage return', oneClass({ name: 'db\rqdisc' }), 7, /egress\.classes\[0\]\.name: must match pattern/],
  ['a class name with "#"', oneClass({ name: 'db#' }), 7, /egress\.classes\[0\]\.name: must match pattern/],
  ['a default class carrying a tc command', egress({ default: `db${SMUGGLED}`, classes: [{ name: 'db', rate: '1mbit' }] }), 7, /egress\.default: names no class/],
  ['a protocol carrying a tc command', oneClass({ peers: ['198.18.0.1'], protocol: `tcp${SMUGGLED}` }), 7, /egress\.classes\[0\]\.protocol: must be equal to one of the allowed values/],
  ['a port carrying a tc command', oneClass({ peers: ['198.18.0.1'], protocol: 'tcp', ports: [80, `81${SMUGGLED}`] }), 7, /egress\.classes\[0\]\.ports\[1\]: must be integer/],
  ['a port as a float', oneClass({ peers: ['198.18.0.1'], protocol: 'tcp', ports: [80.5] }), 7, /egress\.classes\[0\]\.ports\[0\]: must be integer/],
  ['a priority carrying a tc command', oneClass({ priority: `1${SMUGGLED}` }), 7, /egress\.classes\[0\]\.priority: must be integer/],
  ['a rate carrying a tc command', egress({ rate: `50mbit${SMUGGLED}` }), 7, /egress\.rate: [\s\S]*is not a number with an optional unit/],
  ['a class ceil carrying a tc command', oneClass({ ceil: `20mbit${SMUGGLED}` }), 7, /egress\.classes\[0\]\.ceil: [\s\S]*is not a number/],
  ['a burst carrying a tc command', egress({ burst: `10KiB${SMUGGLED}` }), 7, /egress\.burst: [\s\S]*is not a number/],
  ['maxBurst carrying a tc command', conf({ maxBurst: `1MiB${SMUGGLED}` }), 7, /maxBurst: [\s\S]*is not a number/],
  ['a peer carrying a tc command', peers(`198.18.0.3/32${SMUGGLED}`), 7, /egress\.classes\[0\]\.peers\[0\]: [\s\S]*is not a valid IPv4 CIDR/],
  ['unshapedSubnets carrying a tc command', conf({ egressRate: 1_000_000, egressBurst: 80_000, unshapedSubnets: [`198.18.0.0/24${SMUGGLED}`] }), 7, /unshapedSubnets\[0\]: [\s\S]*is not a valid IPv4 CIDR/],
  ['a runtime subnet carrying a tc command', conf({ runtimeConfig: { bandwidth: { ingressRate: 1_000_000, ingressBurst: 80_000, unshapedSubnets: [`2001:db8::/32${SMUGGLED}`] } } }), 7, /runtimeConfig\.bandwidth\.unshapedSubnets\[0\]: [\s\S]*is not a valid IPv6 CIDR/],
  ['a runtime rate carrying a tc command', conf({ runtimeConfig: { bandwidth: { egressRate: `1000000${SMUGGLED}`, egressBurst: 1 } } }), 7, /runtimeConfig\.bandwidth\.egressRate: must be integer/],
  ['a Go-spelt reference key carrying a tc command', conf({ EgressRate: `1${SMUGGLED}`, egressBurst: 1 }), 7, /egressRate: must be integer/],
];

const configCases: readonly Case[] = [
  ...typeCases, ...rateCases, ...referenceRateCases, ...burstCases, ...cidrCases, ...cidrListCases,
  ...unknownFieldCases, ...classCases, ...smuggleCases,
];

describe('stdin that is not a network configuration', () => {
  it.each(stdinCases.map((c) => [c[0], c] as const))('%s', async (_name, [, stdin, code, field]) => {
    for (const command of ['ADD', 'CHECK', 'DEL']) {
      expectCniError(await invoke(command, ENV, stdin), code, field);
    }
  });

  it('a config of exactly 1 MiB is read (the limit is inclusive) and gets as far as the netns', async () => {
    const result = await invoke('ADD', ENV, padTo(valid, MAX_STDIN_BYTES));
    expectCniError(result, 4, /CNI_NETNS .* does not exist/);
  });

  it('VERSION answers garbage on stdin with a code 6 error, not a version list', async () => {
    for (const stdin of ['{', 'null', Buffer.alloc(MAX_STDIN_BYTES + 1, '{')]) {
      expectCniError(await invoke('VERSION', {}, stdin), 6, /network configuration on stdin/);
    }
  });
});

describe('cniVersion', () => {
  it.each(versionCases.map((c) => [c[0], c] as const))('%s', async (_name, [, stdin, code, field]) => {
    expectCniError(await invoke('ADD', ENV, stdin), code, field);
    expectCniError(await invoke('CHECK', ENV, stdin), code, field);
  });
});

describe('network configuration refused naming the field (ADD and CHECK), while DEL still succeeds', () => {
  it.each(configCases.map((c) => [c[0], c] as const))('%s', async (_name, [, stdin, code, field]) => {
    expectCniError(await invoke('ADD', ENV, stdin), code, field);
    expectCniError(await invoke('CHECK', ENV, stdin), code, field);
    // DEL finds tcqos's state by handle and name: a config that no longer validates must not block it.
    const deleted = await invoke('DEL', ENV, stdin);
    expect(deleted, deleted.stdout).toMatchObject({ exitCode: 0, stdout: '' });
  });
});

describe('values that look hostile but are only odd stay harmless', () => {
  it.each([
    ['white space around a rate', egress({ rate: ' 50mbit ' })],
    ['a rate with a trailing newline (a number is what reaches tc)', egress({ rate: '50mbit\n' })],
    ['a space between number and unit', egress({ rate: '50 mbit' })],
    ['a network name with a newline (never reaches tc)', conf({ name: `n${SMUGGLED}`, egressRate: 1_000_000, egressBurst: 80_000 })],
    ['Go-style spellings of the reference keys', conf({ EgressRate: 1_000_000, EGRESSBURST: 80_000 })],
    ['a duplicate JSON key (the last one counts, as for JSON.parse)', `{"cniVersion":"1.0.0","type":"tcqos","logLevel":"silent","egressRate":1,"egressRate":1000000,"egressBurst":80000,"prevResult":${JSON.stringify(prevResult)}}`],
  ])('%s: accepted, and stopped only by the missing netns', async (_name, stdin) => {
    expectCniError(await invoke('ADD', ENV, stdin), 4, /CNI_NETNS .* does not exist/);
  });
});

// ---------------------------------------------------------------------------------------------
// CNI_* variables (code 4), for every command that acts on an attachment.

const goodConfig = conf({ egressRate: 1_000_000, egressBurst: 80_000 });

const envCases: ReadonlyArray<[string, Record<string, string | undefined>, RegExp]> = [
  ['CNI_COMMAND in lower case', { CNI_COMMAND: 'add' }, /CNI_COMMAND "add" is not one of/],
  ['CNI_COMMAND with a leading space', { CNI_COMMAND: ' ADD' }, /CNI_COMMAND " ADD" is not one of/],
  ['CNI_COMMAND with a trailing newline', { CNI_COMMAND: 'ADD\n' }, /CNI_COMMAND "ADD\\n" is not one of/],
  ['CNI_COMMAND "ADD;DEL"', { CNI_COMMAND: 'ADD;DEL' }, /CNI_COMMAND "ADD;DEL" is not one of/],
  ['CNI_COMMAND empty', { CNI_COMMAND: '' }, /CNI_COMMAND is not set/],
  ['CNI_CONTAINERID missing', { CNI_CONTAINERID: undefined }, /CNI_CONTAINERID is not set/],
  ['CNI_CONTAINERID with a space', { CNI_CONTAINERID: 'a b' }, /CNI_CONTAINERID may hold only/],
  ['CNI_CONTAINERID with a newline', { CNI_CONTAINERID: 'abc\ndef' }, /CNI_CONTAINERID may hold only/],
  ['CNI_CONTAINERID starting with "."', { CNI_CONTAINERID: '.abc' }, /CNI_CONTAINERID may hold only/],
  ['CNI_CONTAINERID starting with "-"', { CNI_CONTAINERID: '-abc' }, /CNI_CONTAINERID may hold only/],
  ['CNI_CONTAINERID of 257 characters', { CNI_CONTAINERID: 'a'.repeat(257) }, /CNI_CONTAINERID may hold only/],
  ['CNI_CONTAINERID with a shell substitution', { CNI_CONTAINERID: 'a$(reboot)' }, /CNI_CONTAINERID may hold only/],
  ['a non-ASCII CNI_CONTAINERID', { CNI_CONTAINERID: 'pöd' }, /CNI_CONTAINERID may hold only/],
  ['CNI_IFNAME missing', { CNI_IFNAME: undefined }, /CNI_IFNAME is not set/],
  ['CNI_IFNAME with a trailing newline', { CNI_IFNAME: 'eth0\n' }, /CNI_IFNAME "eth0\\n" is not an interface name/],
  ['CNI_IFNAME carrying a tc command', { CNI_IFNAME: `eth0${SMUGGLED}` }, /CNI_IFNAME "eth0\\nqdisc del dev eth0 root" is not an interface name/],
  ['CNI_IFNAME with a carriage return', { CNI_IFNAME: 'eth0\r' }, /CNI_IFNAME "eth0\\r" is not an interface name/],
  ['CNI_IFNAME with a space', { CNI_IFNAME: 'eth 0' }, /is not an interface name/],
  ['CNI_IFNAME "eth0 root"', { CNI_IFNAME: 'eth0 root' }, /is not an interface name/],
  ['CNI_IFNAME with a tab', { CNI_IFNAME: 'eth0\tx' }, /is not an interface name/],
  ['CNI_IFNAME with a slash', { CNI_IFNAME: 'eth0/1' }, /is not an interface name/],
  ['CNI_IFNAME "."', { CNI_IFNAME: '.' }, /is not an interface name/],
  ['CNI_IFNAME "../eth0"', { CNI_IFNAME: '../eth0' }, /is not an interface name/],
  ['CNI_IFNAME starting with "-"', { CNI_IFNAME: '-eth0' }, /is not an interface name/],
  ['CNI_IFNAME of 16 characters', { CNI_IFNAME: 'a'.repeat(16) }, /is not an interface name/],
  ['CNI_IFNAME of 40 characters', { CNI_IFNAME: 'eth'.repeat(13) + 'x' }, /is not an interface name/],
  ['CNI_IFNAME with ";"', { CNI_IFNAME: 'eth0;reboot' }, /is not an interface name/],
  ['CNI_IFNAME with a NUL', { CNI_IFNAME: 'eth0\0' }, /is not an interface name/],
  ['CNI_IFNAME with "#"', { CNI_IFNAME: 'eth0#' }, /is not an interface name/],
  ['CNI_IFNAME with a quote', { CNI_IFNAME: 'eth0"' }, /is not an interface name/],
  ['CNI_IFNAME with ":" (an alias)', { CNI_IFNAME: 'eth0:1' }, /is not an interface name/],
  ['CNI_IFNAME with "@"', { CNI_IFNAME: 'eth0@if2' }, /is not an interface name/],
  ['a non-ASCII CNI_IFNAME', { CNI_IFNAME: 'ethé' }, /is not an interface name/],
  ['CNI_NETNS relative', { CNI_NETNS: 'var/run/netns/x' }, /CNI_NETNS must be an absolute path/],
  ['CNI_NETNS "."', { CNI_NETNS: '.' }, /CNI_NETNS must be an absolute path/],
  ['CNI_NETNS with a newline', { CNI_NETNS: '/var/run/netns/x\nqdisc' }, /CNI_NETNS must be an absolute path/],
  ['CNI_NETNS with a NUL', { CNI_NETNS: '/var/run/netns/x\0y' }, /CNI_NETNS must be an absolute path/],
  ['CNI_NETNS of 4097 characters', { CNI_NETNS: `/${'a'.repeat(4096)}` }, /CNI_NETNS must be an absolute path/],
  ['CNI_NETNS that looks like an option', { CNI_NETNS: '--help' }, /CNI_NETNS must be an absolute path/],
  ['CNI_ARGS without "="', { CNI_ARGS: 'K8S_POD_NAME' }, /CNI_ARGS has "K8S_POD_NAME", which is not KEY=VALUE/],
  ['CNI_ARGS with an empty key', { CNI_ARGS: '=x' }, /CNI_ARGS has "=x"/],
  ['CNI_ARGS with a bad second pair', { CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME' }, /CNI_ARGS has "K8S_POD_NAME"/],
];

describe('CNI_* variables are refused with code 4, naming the variable', () => {
  it.each(envCases)('%s', async (_name, change, field) => {
    for (const command of ['ADD', 'CHECK', 'DEL']) {
      const env = { ...ENV, ...change };
      const result = await invoke(change['CNI_COMMAND'] ?? command, env, goodConfig);
      expectCniError(result, 4, field);
    }
  });

  it('ADD and CHECK without CNI_NETNS are refused; DEL without one succeeds (the netns is gone)', async () => {
    for (const command of ['ADD', 'CHECK']) expectCniError(await invoke(command, { ...ENV, CNI_NETNS: undefined }, goodConfig), 4, /CNI_NETNS is not set/);
    expect(await invoke('DEL', { ...ENV, CNI_NETNS: undefined }, goodConfig)).toMatchObject({ exitCode: 0, stdout: '' });
  });

  it('an interface name of exactly 15 characters is accepted', async () => {
    const fifteen = 'a'.repeat(15);
    const stdin = JSON.stringify({ ...base, egressRate: 1_000_000, egressBurst: 80_000, prevResult: { ...prevResult, interfaces: [{ name: fifteen, sandbox: '/x' }] } });
    expectCniError(await invoke('ADD', { ...ENV, CNI_IFNAME: fifteen }, stdin), 4, /CNI_NETNS .* does not exist/);
  });
});

describe('prevResult that does not name the interface (code 7)', () => {
  const withPrev = (prev: unknown): string => conf({ egressRate: 1_000_000, egressBurst: 80_000, prevResult: prev });
  it.each([
    ['no interfaces', withPrev({ cniVersion: '1.0.0' }), /prevResult lists no interfaces/],
    ['interfaces as an object', withPrev({ interfaces: { 0: { name: 'eth0', sandbox: '/x' } } }), /prevResult lists no interfaces/],
    ['an empty interface list', withPrev({ interfaces: [] }), /prevResult lists no interfaces/],
    ['the interface outside any sandbox (the host side)', withPrev({ interfaces: [{ name: 'eth0' }] }), /prevResult has no interface "eth0" inside the pod sandbox/],
    ['an empty sandbox', withPrev({ interfaces: [{ name: 'eth0', sandbox: '' }] }), /no interface "eth0" inside the pod sandbox/],
    ['the sandbox as a number', withPrev({ interfaces: [{ name: 'eth0', sandbox: 1 }] }), /no interface "eth0" inside the pod sandbox/],
    ['a different interface', withPrev({ interfaces: [{ name: 'net1', sandbox: '/x' }] }), /no interface "eth0" inside the pod sandbox/],
    ['the name in another case', withPrev({ interfaces: [{ name: 'ETH0', sandbox: '/x' }] }), /no interface "eth0"/],
    ['interfaces holding numbers and strings', withPrev({ interfaces: [1, 'eth0', true] }), /no interface "eth0"/],
  ])('%s', async (_name, stdin, field) => {
    expectCniError(await invoke('ADD', ENV, stdin), 7, field);
  });
});

// ---------------------------------------------------------------------------------------------
// Bugs this corpus found, kept fixed.

describe('bugs found by the corpus stay fixed', () => {
  it('a top-level "__proto__" key is refused as an unknown key like any other', async () => {
    // canonicalKeys() copies keys with `renamed[key] = value`, so "__proto__" sets the copy's
    // prototype: the key disappears from additionalProperties' view and its members are read
    // through the prototype - here a whole egress tree nobody can see in the config's own keys.
    const stdin = `{"cniVersion":"1.0.0","type":"tcqos","logLevel":"silent","__proto__":{"egress":{"rate":"10mbit"}},"prevResult":${JSON.stringify(prevResult)}}`;
    expectCniError(await invoke('ADD', ENV, stdin), 7, /__proto__: unknown key/);
  });

  it('a refusal never repeats a hostile value raw: msg holds no line break', async () => {
    // units.ts, cidr.ts, normalize.ts (default class), skel.ts (cniVersion) and env.ts (CNI_COMMAND,
    // CNI_ARGS) put the value between quotes as is; a runtime that logs msg then logs a forged line.
    for (const stdin of [egress({ rate: `10mbit${SMUGGLED}` }), peers(`198.18.0.3/32${SMUGGLED}`), conf({ cniVersion: `1.0.0${SMUGGLED}` })]) {
      const result = await invoke('ADD', ENV, stdin);
      expect(String(result.json?.['msg'])).not.toMatch(/[\n\r]/);
    }
    const command = await invoke(`ADD${SMUGGLED}`, ENV, goodConfig);
    expect(String(command.json?.['msg'])).not.toMatch(/[\n\r]/);
  });

  it.each([
    ['an unknown key carrying a line break', `{"cniVersion":"1.0.0","type":"tcqos","egress\\nqdisc del":{"rate":"1mbit"}}`, /egress\\u000aqdisc del: unknown key/],
    ['an unknown key carrying U+2028', `{"cniVersion":"1.0.0","type":"tcqos","egress\u2028x":{"rate":"1mbit"}}`, /egress\\u2028x: unknown key/],
    ['a rate padded with U+2028 (white space to the unit parser)', egress({ rate: '\u20281bit' }), /"\\u20281bit" is below the lowest/],
    ['a CIDR carrying U+0085 (NEL)', peers('198.18.0.1\u0085/32'), /"198\.18\.0\.1\\u0085\/32" is not a valid IPv4 CIDR/],
    ['a CIDR carrying DEL', peers('198.18.0.1\u007f'), /\\u007f" is not a valid IPv4 CIDR/],
    ['a default class name carrying U+2029', egress({ default: 'x\u2029y' }), /egress\.default: /],
    [
      'an annotation whose unknown key carries a line break',
      conf({ runtimeConfig: { 'io.kubernetes.cri.pod-annotations': { 'tcqos.io/policy': '{"egress\\nqdisc del dev eth0 root":{}}' } } }),
      /annotation tcqos\.io\/policy: egress\\u000aqdisc del dev eth0 root: unknown key/,
    ],
    [
      'an annotation rate carrying U+0085 and a tc command',
      conf({ runtimeConfig: { 'io.kubernetes.cri.pod-annotations': { 'tcqos.io/policy': `{"egress":{"rate":"1mbit\\u0085${SMUGGLED.replace('\n', '\\n')}"}}` } } }),
      /annotation tcqos\.io\/policy: egress\.rate: "1mbit\\u0085\\nqdisc del dev eth0 root" is not a number/,
    ],
  ])('a refusal repeating %s keeps msg one printable line', async (_name, stdin, field) => {
    expectCniError(await invoke('ADD', ENV, stdin), 7, field);
  });

  it('a "__proto__" key inside runtimeConfig.bandwidth is refused as an unknown key', async () => {
    const stdin = `{"cniVersion":"1.0.0","type":"tcqos","logLevel":"silent","runtimeConfig":{"bandwidth":{"__proto__":{"egressRate":1000000,"egressBurst":80000}}},"prevResult":${JSON.stringify(prevResult)}}`;
    expectCniError(await invoke('ADD', ENV, stdin), 7, /runtimeConfig\.bandwidth\.__proto__: unknown key/);
  });

  it('runtime (pod-author) subnets cannot lift the administrator\'s limit', async () => {
    // subnetRules() takes runtimeConfig.bandwidth.unshapedSubnets / shapedSubnets whenever the
    // administrator set none, and applies them to the administrator's own limit: a pod whose
    // runtime config says unshapedSubnets ["0.0.0.0/0", "::/0"] escapes a 1 Mbit/s egressRate.
    inputsTried++;
    const { policy } = await normalizeConfig({
      cniVersion: '1.0.0', type: 'tcqos', egressRate: 1_000_000, egressBurst: 80_000,
      runtimeConfig: { bandwidth: { unshapedSubnets: ['0.0.0.0/0', '::/0'] } },
    });
    expect(policy.egress?.rules.filter((rule) => rule.className === 'unshaped')).toEqual([]);
  });
});
