import { describe, expect, it } from 'vitest';
import { base, policyOf, refusal } from '../helpers/derive.ts';
import { derivePolicy } from '../../src/config/derive.ts';
import { policyAnnotations } from '../../src/config/policy-annotations.ts';

describe('the conflist entry alone', () => {
  it('is the cap and the policy in force, from the config', async () => {
    const derived = await derivePolicy({ config: { ...base, egress: { rate: '10mbit' }, ingressRate: 20e6, ingressBurst: 1e5 } });
    expect(derived.policy).toEqual(derived.caps);
    expect(derived.sources).toEqual({ egress: 'config', ingress: 'config' });
    expect(derived.notices).toEqual([]);
  });
});

describe('a tcqos.io/policy annotation', () => {
  const annotated = { egress: { rate: '20mbit', default: 'rest', classes: [{ name: 'db', rate: '15mbit', peers: ['198.18.0.3/32'] }, { name: 'rest', rate: '5mbit' }] } };

  it('is in force as written in a direction the conflist leaves uncapped', async () => {
    const derived = await derivePolicy({ config: base, annotations: policyOf(annotated) });
    expect(derived.caps).toEqual({});
    expect(derived.sources).toEqual({ egress: 'annotation' });
    expect(derived.policy.egress?.classes.map((c) => [c.name, c.rate, c.ceil])).toEqual([['db', 15e6, 15e6], ['rest', 5e6, 5e6]]);
    expect(derived.policy.egress?.rules[0]?.peers[0]?.text).toBe('198.18.0.3/32');
  });

  it('replaces the cap\'s tree when it fits under the cap, without a notice', async () => {
    const derived = await derivePolicy({ config: { ...base, egress: { rate: '50mbit', classes: [{ name: 'web', rate: '10mbit' }] } }, annotations: policyOf(annotated) });
    expect(derived.policy.egress?.classes.map((c) => c.name)).toEqual(['db', 'rest']);
    expect(derived.caps.egress?.classes.map((c) => c.name)).toEqual(['web', 'default']);
    expect(derived.sources.egress).toBe('annotation');
    expect(derived.notices).toEqual([]);
  });

  it('above the cap is fitted under it: rate and ceil lowered, class rates scaled, class ceils clipped', async () => {
    const derived = await derivePolicy({
      config: { ...base, egress: { rate: '10mbit', ceil: '12mbit' } },
      annotations: policyOf({ egress: { rate: '20mbit', ceil: '40mbit', default: 'rest', classes: [{ name: 'db', rate: '15mbit', ceil: '40mbit' }, { name: 'rest', rate: '5mbit' }] } }),
    });
    expect(derived.policy.egress).toMatchObject({ rate: 10e6, ceil: 12e6 });
    expect(derived.policy.egress?.classes.map((c) => [c.name, c.rate, c.ceil])).toEqual([['db', 7.5e6, 12e6], ['rest', 2.5e6, 5e6]]);
    expect(derived.notices).toEqual(['annotation tcqos.io/policy: egress fitted under the configured cap (ceil 40mbit -> 12mbit, rate 20mbit -> 10mbit, class rates scaled to 50%)']);
  });

  it('never gets a bigger bucket than the cap allows', async () => {
    const derived = await derivePolicy({
      config: { ...base, egressRate: 10e6, egressBurst: 80_000 },
      annotations: policyOf({ egress: { rate: '50mbit', burst: '1MiB', classes: [{ name: 'db', rate: '10mbit', burst: '512KiB', peers: ['198.18.0.3'] }] } }),
    });
    const egress = derived.policy.egress!;
    // The root's bucket and every class's together: HTB lets a class with tokens send without asking the root.
    expect((egress.burst ?? 0) + egress.classes.reduce((sum, c) => sum + (c.burst ?? 0), 0)).toBeLessThanOrEqual(10_000);
    expect(egress.burst).toBe(6_666);
  });

  it('with classes whose floors cannot fit under the cap is refused, naming the annotation and the field', async () => {
    const classes = Array.from({ length: 64 }, (_, i) => ({ name: `c${i}`, rate: '1mbit' }));
    expect(await refusal({ config: { ...base, egress: { rate: '100kbit' } }, annotations: policyOf({ egress: { rate: '64mbit', default: 'c0', classes } }) })).toBe(
      'annotation tcqos.io/policy: egress.classes: 64 classes of at least 8kbit each (512kbit) do not fit under 100kbit',
    );
  });

  it('under a runtime rate too low for its classes is refused, naming the runtime field', async () => {
    const classes = Array.from({ length: 20 }, (_, i) => ({ name: `c${i}`, rate: '1mbit' }));
    expect(await refusal({ config: { ...base, egress: { rate: '20mbit', default: 'c0', classes } }, runtime: { egressRate: 100_000, egressBurst: 100_000 } })).toBe(
      'runtimeConfig.bandwidth.egressRate: 20 classes of at least 8kbit each (160kbit) do not fit under 100kbit',
    );
  });

  it('of 8 classes with 29 MiB bursts under a cap without a burst gets only default buckets', async () => {
    const classes = Array.from({ length: 8 }, (_, i) => ({ name: `c${i}`, rate: '1250kbit', ceil: '10mbit', burst: '29MiB' }));
    const derived = await derivePolicy({ config: { ...base, egress: { rate: '10mbit' } }, annotations: policyOf({ egress: { rate: '10mbit', default: 'c0', classes } }) });
    expect(derived.policy.egress?.classes.map((c) => c.burst)).toEqual(Array(8).fill(undefined));
    expect(derived.notices).toEqual(['annotation tcqos.io/policy: egress fitted under the configured cap (8 bursts dropped: the limit sets none, so every bucket is the default)']);
  });

  it('for the network (tcqos.io/policy.<name>) replaces the generic one, no merge', async () => {
    const annotations = { ...policyOf({ egress: { rate: '1mbit' } }), 'tcqos.io/policy.net': JSON.stringify({ ingress: { rate: '2mbit' } }) };
    const derived = await derivePolicy({ config: base, annotations });
    expect(derived.policy.egress).toBeUndefined();
    expect(derived.policy.ingress?.rate).toBe(2e6);
  });

  it('for another network is ignored', async () => {
    const annotations = { ...policyOf({ egress: { rate: '1mbit' } }), 'tcqos.io/policy.net1': JSON.stringify({ ingress: { rate: '2mbit' } }) };
    const derived = await derivePolicy({ config: base, annotations });
    expect(derived.policy.egress?.rate).toBe(1e6);
    expect(derived.policy.ingress).toBeUndefined();
  });

  it('arrives at ADD inside runtimeConfig with every other pod annotation, which are ignored', async () => {
    const annotations = { ...policyOf({ egress: { rate: '3mbit' } }), 'kubernetes.io/egress-bandwidth': 'not even a quantity', 'app': '{' };
    const derived = await derivePolicy({ config: { ...base, runtimeConfig: { 'io.kubernetes.cri.pod-annotations': annotations } } });
    expect(derived.policy.egress?.rate).toBe(3e6);
    expect(derived.sources).toEqual({ egress: 'annotation' });
  });

  it('passed apart (the agent) wins over the one inside runtimeConfig', async () => {
    const derived = await derivePolicy({
      config: { ...base, runtimeConfig: { 'io.kubernetes.cri.pod-annotations': policyOf({ egress: { rate: '3mbit' } }) } },
      annotations: {},
    });
    expect(derived.policy).toEqual({});
  });

  it.each([
    [{ egress: { rate: 'fast' } }, /^annotation tcqos\.io\/policy: egress\.rate: "fast" is not a number with an optional unit$/],
    [{ egress: { rate: '10mbit', classes: [{ name: 'a', rate: '20mbit' }] } }, /^annotation tcqos\.io\/policy: egress\.classes\[0\]\.rate: 20mbit is above egress\.ceil 10mbit/],
    [{ egress: { rate: '10mbit', classes: [{ name: 'a', rate: '1mbit', peers: ['198.18.0.300'] }] } }, /^annotation tcqos\.io\/policy: egress\.classes\[0\]\.peers\[0\]: "198\.18\.0\.300" is not a valid IPv4 CIDR$/],
    [{ egres: { rate: '10mbit' } }, /^annotation tcqos\.io\/policy: egres: unknown key, did you mean "egress"\?$/],
    [{ egress: { rate: '10mbit', maxBurst: '1MiB' } }, /^annotation tcqos\.io\/policy: egress\.maxBurst: unknown key$/],
    [{ egressRate: 1000000 }, /^annotation tcqos\.io\/policy: egressRate: unknown key/],
    [[], /^annotation tcqos\.io\/policy: must be object$/],
    [{ ingress: {} }, /^annotation tcqos\.io\/policy: ingress\.rate: is required$/],
  ])('%j is refused naming the annotation and the field', async (document, message) => {
    expect(await refusal({ config: base, annotations: policyOf(document) })).toMatch(message);
  });

  it('that is not JSON is refused naming the annotation, on one line', async () => {
    const message = await refusal({ config: base, annotations: { 'tcqos.io/policy.net': '{"egress":\n qdisc del dev eth0 root' } });
    expect(message).toMatch(/^annotation tcqos\.io\/policy\.net: is not valid JSON \(/);
    expect(message).not.toMatch(/[\n\r]/);
  });

  it('the config is checked before the annotation', async () => {
    expect(await refusal({ config: { ...base, egress: { rate: 'slow' } }, annotations: policyOf({ egress: { rate: 'fast' } }) })).toMatch(/^egress\.rate: "slow"/);
  });
});

describe('runtime values after the annotation', () => {
  it('tighten the annotated tree further: the runtime decides', async () => {
    const derived = await derivePolicy({
      config: { ...base, egressRate: 50e6, egressBurst: 1e6 },
      runtime: { EgressRate: 10e6, EgressBurst: 2 ** 32 - 1 },
      annotations: policyOf({ egress: { rate: '20mbit', classes: [{ name: 'a', rate: '5mbit' }] } }),
    });
    expect(derived.policy.egress).toMatchObject({ rate: 10e6, ceil: 10e6, burst: 65_536 });
    expect(derived.policy.egress?.classes.map((c) => [c.name, c.rate, c.ceil])).toEqual([['a', 2.5e6, 5e6], ['default', 7.5e6, 10e6]]);
    expect(derived.sources.egress).toBe('runtime');
  });

  it('above the annotated tree leave it in force, with a notice', async () => {
    const derived = await derivePolicy({ config: base, runtime: { egressRate: 100e6, egressBurst: 1e5 }, annotations: policyOf({ egress: { rate: '20mbit' } }) });
    expect(derived.policy.egress?.rate).toBe(20e6);
    expect(derived.sources.egress).toBe('annotation');
    expect(derived.notices).toEqual(['runtimeConfig.bandwidth.egressRate 100mbit is above the 20mbit of the annotation: the lower limit stays']);
  });

  it('alone shape the direction, from the runtime', async () => {
    const derived = await derivePolicy({ config: base, runtime: { ingressRate: 10e6, ingressBurst: 1e5 } });
    expect(derived.policy.ingress).toMatchObject({ rate: 10e6, burst: 12_500 });
    expect(derived.sources).toEqual({ ingress: 'runtime' });
  });

  it('passed apart are used instead of runtimeConfig.bandwidth, never both', async () => {
    const derived = await derivePolicy({
      config: { ...base, runtimeConfig: { bandwidth: { egressRate: 1e6, egressBurst: 1e5 } } },
      runtime: { ingressRate: 2e6, ingressBurst: 1e5 },
    });
    expect(derived.policy.egress).toBeUndefined();
    expect(derived.policy.ingress?.rate).toBe(2e6);
  });

  it('passed apart are checked like runtimeConfig.bandwidth', async () => {
    expect(await refusal({ config: base, runtime: { egressRate: -1, egressBurst: 1 } })).toMatch(/^runtimeConfig\.bandwidth\.egressRate: must be >= 0/);
    expect(await refusal({ config: base, runtime: { egressRate: 1e6, egressBurst: 1, egressLatency: 25 } })).toMatch(/^runtimeConfig\.bandwidth\.egressLatency: unknown key/);
  });

  it('kubernetes.io/*-bandwidth annotations are not applied a second time beside runtimeConfig.bandwidth', async () => {
    const derived = await derivePolicy({
      config: base,
      runtime: { egressRate: 20e6, egressBurst: 1e5 },
      annotations: { 'kubernetes.io/egress-bandwidth': '1M' },
    });
    expect(derived.policy.egress?.rate).toBe(20e6);
  });
});

describe('subnets', () => {
  it('of the conflist apply to an annotated tree', async () => {
    const derived = await derivePolicy({ config: { ...base, unshapedSubnets: ['198.18.0.0/24'] }, annotations: policyOf({ egress: { rate: '5mbit' } }) });
    expect(derived.policy.egress?.rules[0]).toMatchObject({ className: 'unshaped' });
    expect(derived.caps).toEqual({});
  });
});

describe('policyAnnotations', () => {
  it('keeps the annotations tcqos reads and nothing else', () => {
    expect(policyAnnotations({ 'tcqos.io/policy': 'a', 'tcqos.io/policy.net1': 'b', 'tcqos.io/policyx': 'c', 'kubernetes.io/egress-bandwidth': '1M', app: 'x' })).toEqual({
      'tcqos.io/policy': 'a',
      'tcqos.io/policy.net1': 'b',
    });
  });
});
