import { describe, expect, it } from 'vitest';
import { normalizeConfig } from '../../src/config/normalize.ts';
import { base, refusalOf } from '../helpers/derive.ts';
import { SEED_EGRESS } from '../helpers/seed-policy.ts';

const seed = { egress: SEED_EGRESS };

function normalize(extra: object) {
  return normalizeConfig({ ...base, ...extra });
}

const refusal = (extra: object) => refusalOf(() => normalize(extra));

describe('the seed model', () => {
  it('becomes a typed policy with rates in bits per second', async () => {
    const { policy } = await normalize(seed);
    expect(policy.ingress).toBeUndefined();
    expect(policy.egress).toMatchObject({ rate: 50e6, ceil: 50e6, defaultClass: 'rest' });
    expect(policy.egress?.classes).toEqual([
      { name: 'rest', rate: 10e6, ceil: 10e6, priority: 0, unshaped: false },
      { name: 'db', rate: 40e6, ceil: 50e6, priority: 1, unshaped: false },
    ]);
    expect(policy.egress?.rules).toHaveLength(1);
    expect(policy.egress?.rules[0]).toMatchObject({ className: 'db', protocol: 'tcp', ports: [5432] });
    expect(policy.egress?.rules[0]?.peers.map((p) => p.text)).toEqual(['198.18.0.3/32', '2001:2:0:0:0:0:0:3/128']);
  });

  it('gives unmatched traffic an implicit class holding what the named classes leave', async () => {
    const { policy } = await normalize({ ingress: { rate: '50mbit', classes: [{ name: 'db', rate: '40mbit', peers: ['198.18.0.3'] }] } });
    expect(policy.ingress?.defaultClass).toBe('default');
    expect(policy.ingress?.classes.at(-1)).toMatchObject({ name: 'default', rate: 10e6, ceil: 10e6 });
  });

  it('a direction with a rate only is one class', async () => {
    const { policy } = await normalize({ egress: { rate: '10mbit' } });
    expect(policy.egress?.classes).toHaveLength(1);
  });

  it.each([
    [{ egress: { rate: '10mbit', classes: [{ name: 'a', rate: '6mbit' }, { name: 'b', rate: '6mbit' }] } }, /egress\.classes: class rates add up to 12mbit, above egress\.rate 10mbit/],
    [{ egress: { rate: '10mbit', classes: [{ name: 'a', rate: '6mbit', ceil: '5mbit' }] } }, /egress\.classes\[0\]\.ceil: 5mbit is below the class's rate 6mbit/],
    [{ egress: { rate: '10mbit', classes: [{ name: 'a', rate: '6mbit', ceil: '20mbit' }] } }, /egress\.classes\[0\]\.ceil: 20mbit is above egress\.ceil 10mbit/],
    [{ egress: { rate: '10mbit', classes: [{ name: 'a', rate: '1mbit' }, { name: 'a', rate: '1mbit' }] } }, /egress\.classes\[1\]\.name: "a" is already the name/],
    [{ egress: { rate: '10mbit', classes: [{ name: 'a', rate: '1mbit', peers: ['198.18.0.300/32'] }] } }, /egress\.classes\[0\]\.peers\[0\]: "198\.18\.0\.300\/32" is not a valid IPv4 CIDR/],
    [{ egress: { rate: '10mbit', classes: [{ name: 'a', rate: '1mbit', peers: ['::ffff:198.18.0.1/128'] }] } }, /IPv4-mapped/],
    [{ egress: { rate: '10mbit', default: 'nope', classes: [{ name: 'a', rate: '1mbit' }] } }, /egress\.default: names no class \("nope"\)/],
    [{ egress: { rate: '10mbit', classes: [{ name: 'a', rate: '10mbit' }] } }, /egress\.default: the classes take all of egress\.rate/],
    [{ egress: { rate: '10mbit', classes: [{ name: 'a', rate: '1mbit', ports: [80] }] } }, /egress\.classes\[0\]\.ports: needs "protocol"/],
    [{ egress: { rate: '10mbit', classes: [{ name: 'a', rate: '1mbit', peers: ['198.18.0.1'], protocol: 'icmp', ports: [80] }] } }, /ports need protocol tcp, udp or sctp/],
    [{ egress: { rate: '10mbit', classes: [{ name: 'a', rate: '1mbit', protocol: 'tcp' }] } }, /egress\.classes\[0\]\.peers: is required/],
    [{ egress: { rate: '10mbit', classes: [{ name: 'a', rate: 0 }] } }, /egress\.classes\[0\]\.rate: 0 is below the lowest/],
    [{ egress: { rate: '10mbit', burst: '10000MiB' } }, /egress\.burst: .*4GB|egress\.burst: is \d+ s of traffic/],
    [{ egress: { rate: '10kbit', burst: '1MiB' } }, /egress\.burst: is 839 s of traffic at the rate; tc cannot hold more than 200 s/],
    [{ egress: { rate: '10mbit', colour: 'blue' } }, /egress\.colour: unknown key/],
    [{ egrss: { rate: '10mbit' } }, /^egrss: unknown key/],
    [{ egress: { rate: '10mbit', classes: [{ name: 'a b', rate: '1mbit' }] } }, /egress\.classes\[0\]\.name: must match pattern/],
    [{ egress: { rate: '10mbit', classes: [{ name: 'unshaped', rate: '1mbit' }] } }, /"unshaped" is reserved/],
    [{ egress: { rate: '10mbit', classes: [{ name: 'a', rate: '1mbit', priority: 8 }] } }, /egress\.classes\[0\]\.priority: must be <= 7/],
    [{ egress: {} }, /egress\.rate: is required/],
    [{ egress: { rate: true } }, /egress\.rate: must be integer,string/],
    [{ egressRate: 1000000, egressBurst: 10000, egress: { rate: '1mbit' } }, /use either "egressRate" or "egress"/],
  ])('%j is refused naming the field', async (extra, message) => {
    expect(await refusal(extra)).toMatch(message);
  });
});

describe("the reference plugin's keys", () => {
  it('static keys are bits per second and bits', async () => {
    const { policy } = await normalize({ ingressRate: 8_000_000, ingressBurst: 80_000 });
    expect(policy.ingress?.classes).toEqual([{ name: 'default', rate: 8e6, ceil: 8e6, burst: 10_000, priority: 0, unshaped: false }]);
    expect(policy.egress).toBeUndefined();
  });

  it('rate without burst and burst without rate are refused, as in the reference', async () => {
    expect(await refusal({ egressRate: 1e6 })).toMatch(/egressBurst: must be set when egressRate is/);
    expect(await refusal({ ingressBurst: 1e6 })).toMatch(/ingressRate: must be set when ingressBurst is/);
  });

  it('bursts of 4 GB and more are refused', async () => {
    expect(await refusal({ egressRate: 1e9, egressBurst: 2 ** 35 })).toMatch(/egressBurst: .*burst cannot be more than 4GB/);
  });

  it('rate 0 leaves the direction unshaped', async () => {
    expect((await normalize({ egressRate: 0, egressBurst: 0, ingressRate: 1e6, ingressBurst: 1e4 })).policy.egress).toBeUndefined();
  });

  it('Go-style case variants are read, with a warning', async () => {
    const { policy, warnings } = await normalize({ IngressRate: 1e6, ingressburst: 1e5, runtimeConfig: { bandWidth: { EgressRate: 2e6, egressBurst: 1e5 } } });
    expect(policy.ingress?.rate).toBe(1e6);
    expect(policy.egress?.rate).toBe(2e6);
    expect(warnings.join('\n')).toMatch(/"IngressRate" read as "ingressRate"[\s\S]*"runtimeConfig\.bandWidth" read as "runtimeConfig\.bandwidth"/);
  });

  it('negative and fractional values are refused by the schema', async () => {
    expect(await refusal({ egressRate: -1, egressBurst: 1 })).toMatch(/^egressRate: must be >= 0/);
    expect(await refusal({ egressRate: 1.5, egressBurst: 1 })).toMatch(/^egressRate: must be integer/);
  });
});

describe('runtime values (pod annotations) tighten but never loosen', () => {
  it('runtime alone shapes, with its burst clamped to 50 ms at the rate', async () => {
    const { policy, notices } = await normalize({ runtimeConfig: { bandwidth: { egressRate: 10e6, egressBurst: 2 ** 32 - 1 } } });
    expect(policy.egress?.rate).toBe(10e6);
    expect(policy.egress?.burst).toBe(65_536);
    expect(notices[0]).toMatch(/clamped to 65536 bytes/);
  });

  it('maxBurst sets the clamp', async () => {
    const { policy } = await normalize({ maxBurst: '1MiB', runtimeConfig: { bandwidth: { egressRate: 100e6, egressBurst: 2 ** 32 - 1 } } });
    expect(policy.egress?.burst).toBe(1_048_576);
  });

  it('a lower runtime rate scales the class tree down', async () => {
    const { policy } = await normalize({ ...seed, runtimeConfig: { bandwidth: { egressRate: 25e6, egressBurst: 1e5 } } });
    expect(policy.egress).toMatchObject({ rate: 25e6, ceil: 25e6 });
    expect(policy.egress?.classes.map((c) => [c.name, c.rate, c.ceil])).toEqual([
      ['rest', 5e6, 10e6],
      ['db', 20e6, 25e6],
    ]);
  });

  it('a runtime burst can shrink the bucket but never grow it', async () => {
    const tree = await normalize({
      egress: { rate: '50mbit', burst: '10KiB', classes: [{ name: 'db', rate: '10mbit', peers: ['198.18.0.3/32'] }] },
      runtimeConfig: { bandwidth: { egressRate: 30e6, egressBurst: 2 ** 32 - 1 } },
    });
    expect(tree.policy.egress?.burst).toBe(10_240);
    const flat = await normalize({ ingressRate: 40e6, ingressBurst: 8e6, runtimeConfig: { bandwidth: { ingressRate: 20e6, ingressBurst: 1e5 } } });
    expect(flat.policy.ingress?.burst).toBe(12_500);
    expect(flat.policy.ingress?.classes[0]?.burst).toBe(12_500);
  });

  it('a higher runtime rate leaves the administrator limit in place', async () => {
    const { policy, notices } = await normalize({ egressRate: 10e6, egressBurst: 1e5, runtimeConfig: { bandwidth: { egressRate: 100e6, egressBurst: 1e5 } } });
    expect(policy.egress?.rate).toBe(10e6);
    expect(notices[0]).toMatch(/egressRate 100mbit is above the 10mbit of the configured limit: the lower limit stays/);
  });
});

describe('unshapedSubnets and shapedSubnets', () => {
  it('unshapedSubnets become a class beside the total, matched first', async () => {
    const { policy } = await normalize({ egressRate: 10e6, egressBurst: 1e5, unshapedSubnets: ['198.18.0.0/24', '2001:2::/48'] });
    expect(policy.egress?.classes.map((c) => [c.name, c.unshaped])).toEqual([['default', false], ['unshaped', true]]);
    expect(policy.egress?.rules[0]).toMatchObject({ className: 'unshaped' });
    expect(policy.egress?.defaultClass).toBe('default');
  });

  it('shapedSubnets make unmatched traffic unshaped', async () => {
    const { policy } = await normalize({ ingressRate: 10e6, ingressBurst: 1e5, shapedSubnets: ['198.18.0.0/24'] });
    expect(policy.ingress?.defaultClass).toBe('unshaped');
    expect(policy.ingress?.rules.at(-1)).toMatchObject({ className: 'default' });
  });

  it('both at once are refused', async () => {
    expect(await refusal({ egressRate: 1e6, egressBurst: 1e4, unshapedSubnets: ['198.18.0.0/24'], shapedSubnets: ['198.18.1.0/24'] })).toMatch(
      /cannot both be set/,
    );
  });

  it('runtime subnets are used when the administrator sets none', async () => {
    const { policy } = await normalize({ runtimeConfig: { bandwidth: { egressRate: 1e6, egressBurst: 1e4, unshapedSubnets: ['198.18.0.0/24'] } } });
    expect(policy.egress?.rules[0]?.peers[0]?.text).toBe('198.18.0.0/24');
  });
});
