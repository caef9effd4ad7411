import { describe, expect, it } from 'vitest';
import { normalizeConfig } from '../../src/config/normalize.ts';
import { parseJson } from '../../src/text/json.ts';
import { classFromText } from '../../src/netns/parse.ts';
import { safeWord, setupLines, teardownLines } from '../../src/plan/batch.ts';
import { describeChange, diffAttachment } from '../../src/plan/diff.ts';
import type { AttachmentPlan } from '../../src/plan/tree.ts';
import { classId, leafHandle } from '../../src/tc/handles.ts';
import type { ObservedAttachment } from '../../src/tc/types.ts';
import { quantumBytes } from '../../src/plan/sizing.ts';
import { planAttachment } from '../../src/plan/tree.ts';
import { ifbName } from '../../src/tc/handles.ts';
import { addressKeys } from '../../src/plan/u32.ts';
import { SEED_EGRESS } from '../helpers/seed-policy.ts';
import { loadCidrSupport, parseCidr } from '../../src/config/cidr.ts';

await loadCidrSupport();

const seedConfig = {
  cniVersion: '1.0.0',
  type: 'tcqos',
  egress: SEED_EGRESS,
  ingress: { rate: '50mbit', default: 'rest', classes: [{ name: 'rest', rate: '10mbit' }, { name: 'db', rate: '40mbit', peers: ['198.18.0.3/32'] }] },
};

const plan = planAttachment((await normalizeConfig(seedConfig)).policy, 'eth0', 1500);

describe('planning the seed policy', () => {
  it('egress is a root class with the total and one class per configured class', () => {
    expect(plan.egress?.dev).toBe('eth0');
    expect(plan.egress?.classes.map((c) => [c.name, classId(c.minor), c.parentMinor, c.rateBytes * 8, c.ceilBytes * 8, c.prio])).toEqual([
      ['total', '7c05:1', undefined, 50e6, 50e6, 0],
      ['rest', '7c05:10', 1, 10e6, 10e6, 0],
      ['db', '7c05:11', 1, 40e6, 50e6, 1],
    ]);
    expect(plan.egress?.defaultMinor).toBe(0x10);
  });

  it('ingress shapes on the ifb and matches the peer as source; a catch-all filter picks the default class', () => {
    expect(plan.ingress?.dev).toBe(plan.ifb);
    expect(plan.ingress?.filters).toEqual([
      { pref: 10, protocol: 'ip', flowidMinor: 0x11, keys: [{ value: 0xc6120003, mask: 0xffffffff, offset: 12 }] },
      { pref: 0x7c04, protocol: 'all', flowidMinor: 0x10, keys: [{ value: 0, mask: 0, offset: 0 }] },
    ]);
  });

  it('egress filters match destination, protocol and destination port per address family', () => {
    expect(plan.egress?.filters).toEqual([
      {
        pref: 10,
        protocol: 'ip',
        flowidMinor: 0x11,
        keys: [
          { value: 0xc6120003, mask: 0xffffffff, offset: 16 },
          { value: 0x00060000, mask: 0x00ff0000, offset: 8 },
          { value: 5432, mask: 0xffff, offset: 20 },
        ],
      },
      {
        pref: 11,
        protocol: 'ipv6',
        flowidMinor: 0x11,
        keys: [
          { value: 0x20010002, mask: 0xffffffff, offset: 24 },
          { value: 0, mask: 0xffffffff, offset: 28 },
          { value: 0, mask: 0xffffffff, offset: 32 },
          { value: 3, mask: 0xffffffff, offset: 36 },
          { value: 0x0600, mask: 0xff00, offset: 4 },
          { value: 5432, mask: 0xffff, offset: 40 },
        ],
      },
      { pref: 0x7c04, protocol: 'all', flowidMinor: 0x10, keys: [{ value: 0, mask: 0, offset: 0 }] },
    ]);
  });

  it('the batch installs the ifb tree before redirecting ingress to it', () => {
    const lines = setupLines(plan);
    expect(lines[0]).toBe('qdisc add dev eth0 root handle 7c05: htb default 10 direct_qlen 0');
    expect(lines).toContain('class add dev eth0 parent 7c05:1 classid 7c05:11 htb rate 40000000bit ceil 50000000bit burst 6514 cburst 7764 quantum 5000 prio 1');
    const redirect = lines.findIndex((line) => line.includes('mirred'));
    const ifbTree = lines.findIndex((line) => line.startsWith(`qdisc add dev ${plan.ifb} root`));
    expect(ifbTree).toBeGreaterThan(0);
    expect(redirect).toBe(lines.length - 1);
    expect(lines[redirect]).toBe(`filter add dev eth0 parent ffff: protocol all pref 31749 u32 match u32 0x00000000 0x00000000 at 0 action mirred egress redirect dev ${plan.ifb}`);
    expect(lines.every((line) => !line.includes('\n'))).toBe(true);
  });

  it('every shaped leaf class gets a tbf queue at its ceil holding 10 ms (at least 8 frames)', () => {
    expect(plan.egress?.leaves).toEqual([
      { classMinor: 0x10, rateBytes: 1_250_000, burstBytes: 2764, limitBytes: 12_500 },
      { classMinor: 0x11, rateBytes: 6_250_000, burstBytes: 7764, limitBytes: 62_500 },
    ]);
    expect(setupLines(plan)).toContain('qdisc add dev eth0 parent 7c05:10 handle 7c10: tbf rate 10000000bit burst 2764 limit 12500');
  });

  it('teardown removes only what is tcqos', () => {
    expect(teardownLines('eth0', { rootQdisc: true, ingressQdisc: undefined })).toEqual(['qdisc del dev eth0 root handle 7c05:']);
    expect(teardownLines('up0', { rootQdisc: false, ingressQdisc: 'clsact' })).toEqual(['qdisc del dev up0 clsact']);
  });
});

describe('sizing', () => {
  it.each([
    [125_000, 1514],
    [1_250_000, 1514],
    [12_500_000, 12_500],
    [125_000_000, 125_000],
    [1_250_000_000, 200_000],
  ])('quantum at %i B/s is %i (a frame at least, never above HTB\'s 200000 limit)', (rate, quantum) => {
    expect(quantumBytes(rate, 1500)).toBe(quantum);
  });
});

describe('names and words placed in commands', () => {
  it('ifb names fit IFNAMSIZ and differ per interface', () => {
    expect(ifbName('eth0')).toMatch(/^tcq[0-9a-f]{12}$/);
    expect(ifbName('eth0')).not.toBe(ifbName('net1'));
  });

  it.each(['eth0\nqdisc del dev eth1 root', 'a b', 'x#y', '"q"', '', 'abcdefghijklmnop'])('%j never reaches a batch line', (word) => {
    expect(() => safeWord(word)).toThrow(/refusing to place/);
  });
});

describe('u32 address keys', () => {
  it('an IPv6 /48 is one full word and one half word', () => {
    expect(addressKeys(parseCidr('2001:2:abcd::/48'), 'src')).toEqual([
      { value: 0x20010002, mask: 0xffffffff, offset: 8 },
      { value: 0xabcd0000, mask: 0xffff0000, offset: 12 },
    ]);
  });

  it('0.0.0.0/0 matches every IPv4 packet', () => {
    expect(addressKeys(parseCidr('0.0.0.0/0'), 'dst')).toEqual([{ value: 0, mask: 0, offset: 16 }]);
  });
});

describe('reading tc output', () => {
  it('repeated keys in tc JSON become arrays', () => {
    expect(parseJson('[{"match":{"off":1},"match":{"off":2},"x":[1]}]')).toEqual([{ match: [{ off: 1 }, { off: 2 }], x: [1] }]);
  });

  it('HTB class text lines are read field by field', () => {
    expect(classFromText('class htb 7c05:10 parent 7c05:1 prio 1 quantum 5000 rate 40Mbit ceil 50Mbit linklayer ethernet burst 6505b/1 mpu 0b cburst 7Kb/1 mpu 0b level 0')).toEqual({
      id: '7c05:10',
      parent: '7c05:1',
      prio: 1,
      quantum: 5000,
      rate: 40e6,
      ceil: 50e6,
      burst: 6505,
      cburst: 7168,
      counters: undefined,
    });
  });

  it('HTB class statistics are read from the lines under the class', () => {
    const block = [
      'class htb 7c05:10 parent 7c05:1 leaf 7c10: prio 0 rate 10Mbit ceil 10Mbit burst 2764b cburst 2764b',
      ' Sent 1234567 bytes 890 pkt (dropped 3, overlimits 45 requeues 0)',
      ' backlog 3028b 2p requeues 0',
      ' lended: 890 borrowed: 0 giants: 0',
    ].join('\n');
    expect(classFromText(block).counters).toEqual({ bytes: 1234567, packets: 890, drops: 3, overlimits: 45, backlogBytes: 3028 });
  });
});

const findDrift = (planned: AttachmentPlan, observed: ObservedAttachment): string[] =>
  diffAttachment(planned, observed).map((change) => describeChange(change, planned));
const NO_COUNTERS = { bytes: 0, packets: 0, drops: 0, overlimits: 0, backlogBytes: 0 };

describe('drift', () => {
  const link = (name: string) => ({ name, ifindex: 2, linkIndex: undefined, address: undefined, mtu: 1500, txqlen: 1000, up: true, kind: undefined, rootQdiscKind: 'htb' });
  const ours = (dev: string, defaultClass: string) => ({ dev, kind: 'htb', handle: '7c05:', root: true, ingress: false, parent: undefined, defaultClass, limit: undefined, rate: undefined, burst: undefined, counters: NO_COUNTERS });
  const asObserved = (tree: NonNullable<typeof plan.egress>) => ({
    qdisc: ours(tree.dev, tree.defaultMinor.toString(16)),
    leaves: tree.leaves.map((leaf) => ({
      dev: tree.dev, kind: 'tbf', handle: leafHandle(leaf.classMinor), root: false, ingress: false,
      parent: classId(leaf.classMinor), defaultClass: undefined, limit: leaf.limitBytes, rate: leaf.rateBytes * 8, burst: leaf.burstBytes, counters: NO_COUNTERS,
    })),
    classes: tree.classes.map((c) => ({
      id: classId(c.minor),
      parent: c.parentMinor === undefined ? undefined : classId(c.parentMinor),
      prio: c.prio,
      quantum: c.quantumBytes,
      rate: c.rateBytes * 8,
      ceil: c.ceilBytes * 8,
      burst: c.burstBytes,
      cburst: c.cburstBytes,
      counters: undefined,
    })),
    filters: tree.filters.map((f) => ({ ...f, kind: 'u32', flowid: classId(f.flowidMinor), redirectTo: undefined })),
  });
  const matching: ObservedAttachment = {
    iface: link('eth0'),
    ifb: { ...link(plan.ifb), kind: 'ifb' },
    onInterface: asObserved(plan.egress!),
    ingressQdisc: { dev: 'eth0', kind: 'ingress', handle: 'ffff:', root: false, ingress: true, parent: undefined, defaultClass: undefined, limit: undefined, rate: undefined, burst: undefined, counters: NO_COUNTERS },
    redirects: [{ pref: 0x7c05, protocol: 'all', kind: 'u32', flowid: undefined, keys: [{ value: 0, mask: 0, offset: 0 }], redirectTo: plan.ifb }],
    onIfb: asObserved(plan.ingress!),
  };

  it('is empty when the observed state is the plan', () => {
    expect(findDrift(plan, matching)).toEqual([]);
  });

  it('names a changed class rate', () => {
    const egress = { ...matching.onInterface, classes: matching.onInterface.classes.map((c) => (c.id === '7c05:11' ? { ...c, rate: 20e6 } : c)) };
    expect(findDrift(plan, { ...matching, onInterface: egress })).toEqual(['egress: class "db" (7c05:11) rate is 20mbit, expected 40mbit']);
  });

  it('names a missing ifb, and the tree it would carry', () => {
    expect(findDrift(plan, { ...matching, ifb: undefined })).toEqual([`ingress: ifb ${plan.ifb} is missing`, `ingress: device ${plan.ifb} is missing`]);
  });

  it('names a missing filter and a missing redirect', () => {
    const drift = findDrift(plan, { ...matching, onInterface: { ...matching.onInterface, filters: [] }, redirects: [] });
    expect(drift).toHaveLength(4);
    expect(drift[0]).toMatch(/egress: filter missing on eth0: protocol ip pref 10/);
    expect(drift[2]).toMatch(/egress: filter missing on eth0: protocol all pref 31748 .* -> 7c05:10/);
    expect(drift[3]).toMatch(/ingress: no filter on eth0 redirects to/);
  });

  it('names a missing leaf queue', () => {
    const egress = { ...matching.onInterface, leaves: matching.onInterface.leaves.slice(1) };
    expect(findDrift(plan, { ...matching, onInterface: egress })).toEqual(['egress: queue under 7c05:10 is missing']);
  });

  it('names a leaf queue left at an old rate', () => {
    const egress = { ...matching.onInterface, leaves: matching.onInterface.leaves.map((leaf, i) => (i === 1 ? { ...leaf, rate: 20e6 } : leaf)) };
    expect(findDrift(plan, { ...matching, onInterface: egress })).toEqual(['egress: queue under 7c05:11 runs at 20mbit holding 62500 bytes, expected 50mbit holding 62500']);
  });

  it('names a foreign root qdisc', () => {
    const egress = { ...matching.onInterface, qdisc: { ...ours('eth0', '1'), kind: 'tbf', handle: '1:' } };
    expect(findDrift(plan, { ...matching, onInterface: egress })).toEqual(["egress: root qdisc on eth0 is tbf 1:, not tcqos's htb 7c05:"]);
  });
});
