import { describe, expect, it } from 'vitest';
import { derivePolicy } from '../../src/config/derive.ts';
import { policyFromJson, policyToJson } from '../../src/config/policy-json.ts';
import { SEED_EGRESS } from '../helpers/seed-policy.ts';

const base = { cniVersion: '1.0.0', name: 'net', type: 'tcqos' };

describe('a policy as JSON', () => {
  it('is plain JSON with CIDRs as their canonical text, and comes back exactly', async () => {
    const { policy } = await derivePolicy({
      config: { ...base, egress: SEED_EGRESS, ingressRate: 10e6, ingressBurst: 1e5, shapedSubnets: ['198.18.0.0/15', '2001:2::/48'] },
    });
    const json = policyToJson(policy);
    const text = JSON.stringify(json);
    expect(JSON.parse(text)).toEqual(json);
    expect(json.egress?.rules[0]?.peers).toEqual(['198.18.0.3/32', '2001:2:0:0:0:0:0:3/128']);
    expect(await policyFromJson(JSON.parse(text))).toEqual(policy);
  });

  it('of an empty policy is {}', async () => {
    expect(policyToJson({})).toEqual({});
    expect(await policyFromJson({})).toEqual({});
  });
});
