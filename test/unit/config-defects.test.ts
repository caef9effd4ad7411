/** Issue 13's configuration defects, kept fixed. */
import { describe, expect, it } from 'vitest';
import { BASE_CONFIG, refusal } from '../helpers/config.ts';
import { normalizeConfig } from '../../src/config/normalize.ts';

const base = BASE_CONFIG;

describe('a default that names no class', () => {
  it('is refused when the direction lists no classes at all', async () => {
    expect(await refusal({ egress: { rate: '10mbit', default: 'db' } })).toBe('egress.default: names no class ("db"): this direction lists no classes');
  });

  it('is refused even when it is the implicit class\'s name', async () => {
    expect(await refusal({ ingress: { rate: '10mbit', default: 'default' } })).toMatch(/^ingress\.default: names no class/);
  });
});

describe('a class rate above its direction blames the rate, with the numbers', () => {
  it('when the class writes no ceil', async () => {
    expect(await refusal({ egress: { rate: '50mbit', classes: [{ name: 'a', rate: '60mbit' }] } })).toBe(
      'egress.classes[0].rate: 60mbit is above egress.ceil 50mbit, which caps the whole attachment',
    );
  });

  it('when it writes a ceil too', async () => {
    expect(await refusal({ egress: { rate: '50mbit', classes: [{ name: 'a', rate: '60mbit', ceil: '70mbit' }] } })).toMatch(/^egress\.classes\[0\]\.rate: 60mbit is above/);
  });

  it('against the direction rate when only the ceil leaves room', async () => {
    expect(await refusal({ egress: { rate: '50mbit', ceil: '100mbit', classes: [{ name: 'a', rate: '60mbit' }] } })).toBe(
      'egress.classes[0].rate: 60mbit is above egress.rate 50mbit',
    );
  });

  it('while a ceil the user wrote above the direction blames the ceil', async () => {
    expect(await refusal({ egress: { rate: '50mbit', classes: [{ name: 'a', rate: '10mbit', ceil: '60mbit' }] } })).toBe(
      'egress.classes[0].ceil: 60mbit is above egress.ceil 50mbit, which caps the whole attachment',
    );
  });
});

describe('an unknown key names itself and the nearest known one', () => {
  it.each([
    [{ egres: { rate: '10mbit' } }, 'egres: unknown key, did you mean "egress"?'],
    [{ Ingress: { rate: '10mbit' } }, 'Ingress: unknown key, did you mean "ingress"?'],
    [{ egress: { rate: '10mbit', clases: [] } }, 'egress.clases: unknown key, did you mean "classes"?'],
    [{ egress: { rate: '10mbit', classes: [{ name: 'a', rate: '1mbit', prioirty: 1 }] } }, 'egress.classes[0].prioirty: unknown key, did you mean "priority"?'],
    [{ uplink: { name: 'eth0', capacity: '1gbit', capactiy: '1gbit' } }, 'uplink.capactiy: unknown key, did you mean "capacity"?'],
    [{ runtimeConfig: { bandwidth: { egressRat: 1 } } }, 'runtimeConfig.bandwidth.egressRat: unknown key, did you mean "egressRate"?'],
  ])('%j', async (extra, message) => {
    expect(await refusal(extra)).toBe(message);
  });

  it.each([
    [{ colour: 'blue' }, 'colour: unknown key'],
    [{ egress: { rate: '10mbit', handle: '1:' } }, 'egress.handle: unknown key'],
    [{ bandwidth: { egressRate: 1 } }, 'bandwidth: unknown key'],
  ])('and suggests nothing when nothing is close: %j', async (extra, message) => {
    expect(await refusal(extra)).toBe(message);
  });
});

describe('what containerd and CRI-O always send is no warning', () => {
  const containerd = { bandwidth: { IngressRate: 20_000_000, IngressBurst: 2 ** 32 - 1, EgressRate: 10_000_000, EgressBurst: 2 ** 32 - 1 } };

  it("containerd's Go-cased keys and 2^32-1 bit bursts: no warning, the clamps as notices", async () => {
    const { policy, warnings, notices } = await normalizeConfig({ ...base, runtimeConfig: containerd });
    expect(policy.egress?.rate).toBe(10e6);
    expect(policy.ingress?.rate).toBe(20e6);
    expect(warnings).toEqual([]);
    expect(notices).toHaveLength(2);
    expect(notices.join('\n')).toMatch(/egressBurst of 536870912 bytes clamped[\s\S]*ingressBurst of 536870912 bytes clamped/);
  });

  it("CRI-O's bursts of 2^35-9 bits: no warning", async () => {
    const { warnings } = await normalizeConfig({ ...base, runtimeConfig: { bandwidth: { EgressRate: 10_000_000, EgressBurst: 2 ** 35 - 9 } } });
    expect(warnings).toEqual([]);
  });

  it("the same spelling in the admin's conflist still warns: the admin can fix it", async () => {
    const { warnings } = await normalizeConfig({ ...base, EgressRate: 10_000_000, EgressBurst: 80_000 });
    expect(warnings).toEqual(['config key "EgressRate" read as "egressRate"', 'config key "EgressBurst" read as "egressBurst"']);
  });
});
