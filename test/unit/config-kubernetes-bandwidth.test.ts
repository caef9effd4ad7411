import { describe, expect, it } from 'vitest';
import { derivePolicy } from '../../src/config/derive.ts';
import { runtimeFromAnnotations } from '../../src/config/kubernetes-bandwidth.ts';

describe('runtimeFromAnnotations: the kubernetes.io/*-bandwidth annotations as containerd would send them', () => {
  it('reads Kubernetes quantities as bits per second, with containerd\'s burst of 2^32-1 bits', () => {
    expect(runtimeFromAnnotations({ 'kubernetes.io/ingress-bandwidth': '10M', 'kubernetes.io/egress-bandwidth': '1Gi', app: 'web' })).toEqual({
      ingressRate: 10_000_000,
      ingressBurst: 2 ** 32 - 1,
      egressRate: 2 ** 30,
      egressBurst: 2 ** 32 - 1,
    });
  });

  it.each([
    ['100k', 100_000],
    ['1.5M', 1_500_000],
    ['2e6', 2_000_000],
    ['5E6', 5_000_000],
    ['64Ki', 65_536],
    ['20000000', 20_000_000],
    ['10000000000m', 10_000_000],
    ['0.1G', 100_000_000],
  ])('%s is %i bit/s', (quantity, bits) => {
    expect(runtimeFromAnnotations({ 'kubernetes.io/egress-bandwidth': quantity })).toEqual({ egressRate: bits, egressBurst: 2 ** 32 - 1 });
  });

  it('gives nothing for a pod without them', () => {
    expect(runtimeFromAnnotations({ 'tcqos.io/policy': '{}' })).toBeUndefined();
  });

  it.each([
    ['10 M', /^annotation kubernetes\.io\/egress-bandwidth: "10 M" is not a Kubernetes quantity/],
    ['10mbit', /is not a Kubernetes quantity/],
    ['-10M', /is not a Kubernetes quantity/],
    ['1k', /^annotation kubernetes\.io\/egress-bandwidth: "1k": 1000 is below the lowest shapeable rate/],
    ['1P', /above the highest rate accepted/],
  ])('%s is refused naming the annotation', (quantity, message) => {
    expect(() => runtimeFromAnnotations({ 'kubernetes.io/egress-bandwidth': quantity })).toThrow(message);
  });

  it('derives the same policy as ADD under containerd (burst clamped the same way)', async () => {
    const config = { cniVersion: '1.0.0', name: 'net', type: 'tcqos' };
    const annotations = { 'kubernetes.io/egress-bandwidth': '10M' };
    const agent = await derivePolicy({ config, runtime: runtimeFromAnnotations(annotations)!, annotations });
    const add = await derivePolicy({ config: { ...config, runtimeConfig: { bandwidth: { EgressRate: 10_000_000, EgressBurst: 2 ** 32 - 1 } } } });
    expect(agent.policy).toEqual(add.policy);
    expect(agent.policy.egress?.burst).toBe(65_536);
  });
});
