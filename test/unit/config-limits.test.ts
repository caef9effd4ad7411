/**
 * The limits a pod's inputs cannot escape: filters per direction, merged peers, the size of an
 * annotation, what one attachment may hold on an uplink, subnets that name one address family.
 */
import { describe, expect, it } from 'vitest';
import { base, policyOf, refusal } from '../helpers/derive.ts';
import { loadCidrSupport, parseCidr } from '../../src/config/cidr.ts';
import { derivePolicy } from '../../src/config/derive.ts';
import { filterCount, mergePeers } from '../../src/config/peers.ts';
import { LIMITS } from '../../src/config/units.ts';

/** `count` distinct, non-adjacent /32 peers (every other address, so nothing merges). */
function scattered(count: number, offset = 0): string[] {
  return Array.from({ length: count }, (_, i) => `10.${(offset + i) >> 7}.${((offset + i) & 127) * 2}.1/32`);
}

/** A tree of `classes` classes with `peers` peers and `ports` ports each. */
function wide(classes: number, peers: number, ports: number): object {
  return {
    rate: '1gbit',
    default: 'c0',
    classes: Array.from({ length: classes }, (_, i) => ({
      name: `c${i}`,
      rate: '1mbit',
      peers: scattered(peers, i * peers),
      protocol: 'tcp',
      ports: Array.from({ length: ports }, (_, p) => 1000 + p),
    })),
  };
}

describe('peers are merged before they become filters', () => {
  const texts = async (list: string[]) => {
    await loadCidrSupport();
    return mergePeers(list.map(parseCidr)).map((cidr) => cidr.text);
  };

  it('a peer inside another one of the same list is dropped, duplicates too', async () => {
    expect(await texts(['198.18.0.0/24', '198.18.0.3/32', '198.18.0.3', '198.18.0.0/16'])).toEqual(['198.18.0.0/16']);
  });

  it('two halves of one block become the block, up as far as they go', async () => {
    expect(await texts(['198.18.0.0/25', '198.18.0.128/25', '198.18.1.0/24', '198.18.3.0/24'])).toEqual(['198.18.0.0/23', '198.18.3.0/24']);
    expect(await texts(Array.from({ length: 256 }, (_, i) => `198.18.7.${i}`))).toEqual(['198.18.7.0/24']);
  });

  it('keeps the families apart, IPv4 first', async () => {
    expect(await texts(['2001:2::/49', '198.18.0.1', '2001:2:0:8000::/49', '0.0.0.0/0'])).toEqual(['0.0.0.0/0', '2001:2:0:0:0:0:0:0/48']);
  });

  it('in a policy: a class\'s peers are merged, and the rule keeps one filter per merged peer and port', async () => {
    const { policy } = await derivePolicy({
      config: { ...base, egress: { rate: '10mbit', classes: [{ name: 'db', rate: '5mbit', peers: ['198.18.0.0/25', '198.18.0.128/25', '198.18.0.7'], protocol: 'tcp', ports: [5432, 5433] }] } },
    });
    expect(policy.egress!.rules[0]!.peers.map((peer) => peer.text)).toEqual(['198.18.0.0/24']);
    expect(filterCount(policy.egress!)).toBe(2);
  });
});

describe('filters per direction are bounded', () => {
  it(`a tree asking for more than ${LIMITS.maxFiltersPerDirection} filters is refused naming the annotation and the count`, async () => {
    const message = await refusal({ config: base, annotations: policyOf({ egress: wide(4, 40, 32) }) });
    expect(message).toBe(`annotation tcqos.io/policy: egress.classes: ask for 5120 filters (peers x ports, after merging peers), more than the ${LIMITS.maxFiltersPerDirection} a direction may have`);
  });

  it('the most the schema allows (64 classes x 256 peers x 32 ports) is refused, not planned', async () => {
    expect(await refusal({ config: { ...base, egress: wide(64, 256, 32) } })).toMatch(/^egress\.classes: ask for 524288 filters/);
  });

  it('a tree at the limit is accepted, one filter above it is not', async () => {
    // 16 classes x 32 peers x 8 ports = 4096
    const derived = await derivePolicy({ config: base, annotations: policyOf({ ingress: wide(16, 32, 8) }) });
    expect(filterCount(derived.policy.ingress!)).toBe(4096);
    const over = wide(16, 32, 8) as { classes: Array<{ peers: string[] }> };
    over.classes[0]!.peers.push('192.0.2.1/32');
    expect(await refusal({ config: base, annotations: policyOf({ ingress: over }) })).toMatch(/^annotation tcqos\.io\/policy: ingress\.classes: ask for 4104 filters/);
  });

  it("the conflist's own tree is held to the same limit, naming its field", async () => {
    expect(await refusal({ config: { ...base, egress: wide(64, 256, 1) } })).toMatch(/^egress\.classes: ask for 16384 filters/);
  });

  it('subnets count with the tree they are added to, naming the subnets', async () => {
    const message = await refusal({ config: { ...base, unshapedSubnets: scattered(200, 9000) }, annotations: policyOf({ egress: wide(16, 32, 8) }) });
    expect(message).toMatch(/^unshapedSubnets: ask for 4296 filters \(egress's peers x ports with these subnets, after merging peers\)/);
  });

  it('an annotation bigger than tcqos reads is refused before it is parsed, naming it', async () => {
    const big = `{"egress":{"rate":"1mbit"}}${' '.repeat(LIMITS.maxAnnotationBytes)}`;
    expect(await refusal({ config: base, annotations: { 'tcqos.io/policy': big } })).toBe(
      `annotation tcqos.io/policy: is ${big.length} bytes, more than the 65536 tcqos reads`,
    );
    expect(await refusal({ config: base, annotations: { 'tcqos.io/policy': `[${'['.repeat(200_000)}` } })).toMatch(/^annotation tcqos\.io\/policy: is 200001 bytes/);
  });
});

describe('what one attachment may hold on an uplink', () => {
  const uplink = { name: 'eth1', capacity: '1gbit' };

  it('an annotation claiming the whole uplink is lowered to the per-attachment maximum; its ceil stays', async () => {
    const derived = await derivePolicy({ config: { ...base, uplink }, annotations: policyOf({ egress: { rate: '1gbit' } }) });
    // 1 Gbit/s less the 5% reserve, a quarter of that
    expect(derived.policy.egress).toMatchObject({ rate: 237.5e6, ceil: 1e9 });
    expect(derived.notices).toEqual(['egress: guaranteed rate 1gbit -> 237500kbit: the most one attachment may hold on uplink eth1']);
  });

  it('applies to every source of the guarantee, the configured cap and the runtime alike', async () => {
    const config = { ...base, uplink: { ...uplink, maxGuaranteePerAttachment: '100mbit' }, ingress: { rate: '400mbit', classes: [{ name: 'a', rate: '300mbit' }] } };
    const derived = await derivePolicy({ config, runtime: { egressRate: 500e6, egressBurst: 1e6 } });
    expect(derived.policy.ingress?.rate).toBe(100e6);
    expect(derived.policy.ingress?.classes.map((c) => c.rate)).toEqual([75e6, 25e6]);
    expect(derived.policy.egress).toMatchObject({ rate: 100e6, ceil: 500e6 });
  });

  it('is refused when the pod\'s classes cannot each keep the lowest rate under it', async () => {
    const classes = Array.from({ length: 20 }, (_, i) => ({ name: `c${i}`, rate: '1mbit' }));
    const config = { ...base, uplink: { ...uplink, maxGuaranteePerAttachment: '100kbit' } };
    expect(await refusal({ config, annotations: policyOf({ egress: { rate: '20mbit', default: 'c0', classes } }) })).toBe(
      'uplink.maxGuaranteePerAttachment: 20 classes of at least 8kbit each (160kbit) do not fit under 100kbit',
    );
  });
});

describe('subnets that name one address family', () => {
  it('shapedSubnets of IPv4 only: a warning that IPv6 is left unshaped', async () => {
    const derived = await derivePolicy({ config: { ...base, egressRate: 10e6, egressBurst: 1e5, ingressRate: 10e6, ingressBurst: 1e5, shapedSubnets: ['0.0.0.0/0'] } });
    expect(derived.warnings).toEqual(['shapedSubnets lists IPv4 subnets only: all IPv6 traffic is left unshaped (list IPv6 subnets too, "::/0" for all of it)']);
  });

  it('unshapedSubnets of IPv6 only: a warning that IPv4 stays shaped', async () => {
    const derived = await derivePolicy({ config: { ...base, egressRate: 10e6, egressBurst: 1e5, unshapedSubnets: ['2001:2::/48'] } });
    expect(derived.warnings).toEqual(['unshapedSubnets lists IPv6 subnets only: all IPv4 traffic stays shaped (list IPv4 subnets too, "0.0.0.0/0" for all of it)']);
  });

  it('the runtime\'s subnets are named as the runtime\'s', async () => {
    const derived = await derivePolicy({ config: base, runtime: { egressRate: 1e6, egressBurst: 1e4, shapedSubnets: ['198.18.0.0/15'] } });
    expect(derived.warnings).toEqual([expect.stringMatching(/^runtimeConfig\.bandwidth\.shapedSubnets lists IPv4 subnets only/)]);
  });

  it('both families: no warning', async () => {
    const derived = await derivePolicy({ config: { ...base, egressRate: 10e6, egressBurst: 1e5, shapedSubnets: ['0.0.0.0/0', '::/0'] } });
    expect(derived.warnings).toEqual([]);
  });
});
