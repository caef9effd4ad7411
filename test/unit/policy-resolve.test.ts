/**
 * BandwidthPolicy resolution, pure: label selectors as Kubernetes reads them, the precedence
 * between policies (network named, priority, name; per direction), a policy's check naming the
 * field, the policy as an input of derivePolicy (under the cap, below the annotation, above the
 * conflist, tightened by kubernetes.io/*-bandwidth), and the per-pod entries the plugin reads.
 */
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCidrSupport } from '../../src/config/cidr.ts';
import { derivePolicy } from '../../src/config/derive.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { PolicyEntries } from '../../src/policy/entries.ts';
import { checkPolicy, type BandwidthPolicy, type PolicyObject } from '../../src/policy/object.ts';
import { resolveForNetwork, selecting } from '../../src/policy/resolve.ts';
import { describeSelector, selects } from '../../src/policy/selector.ts';

const object = (name: string, spec: object, namespace = 'shop'): PolicyObject => ({ namespace, name, generation: 1, spec });
const policy = (name: string, spec: object, namespace = 'shop'): BandwidthPolicy => checkPolicy(object(name, spec, namespace));
const egress = (rate: string) => ({ rate });

function problem(spec: unknown): string {
  try {
    checkPolicy({ namespace: 'shop', name: 'p', generation: 1, spec });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('the policy was accepted');
}

beforeAll(loadCidrSupport);

describe('label selectors', () => {
  const labels = { app: 'web', tier: 'front' };
  it.each([
    [{}, true],
    [{ matchLabels: { app: 'web' } }, true],
    [{ matchLabels: { app: 'web', tier: 'back' } }, false],
    [{ matchExpressions: [{ key: 'tier', operator: 'In', values: ['front', 'edge'] }] }, true],
    [{ matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['front'] }] }, false],
    [{ matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] }, true],
    [{ matchExpressions: [{ key: 'app', operator: 'Exists' }] }, true],
    [{ matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] }, false],
    [{ matchLabels: { app: 'web' }, matchExpressions: [{ key: 'zone', operator: 'Exists' }] }, false],
  ])('%j selects {app: web, tier: front}: %s', (selector, expected) => {
    expect(selects(selector as never, labels)).toBe(expected);
  });

  it('are printed as kubectl prints them', () => {
    expect(describeSelector({})).toBe('(all pods)');
    expect(describeSelector({ matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['a', 'b'] }, { key: 'x', operator: 'DoesNotExist' }] })).toBe('app=web,tier in (a,b),!x');
  });
});

describe('a BandwidthPolicy check', () => {
  it('accepts a policy in the conflist\'s direction schema, priority 0 by default', () => {
    const checked = policy('web', { podSelector: { matchLabels: { app: 'web' } }, egress: { rate: '20mbit', classes: [{ name: 'db', rate: '5mbit', peers: ['198.18.0.0/24'] }] } });
    expect(checked).toMatchObject({ key: 'shop/web', priority: 0, selector: { matchLabels: { app: 'web' } } });
    expect(checked.trees.egress).toEqual({ rate: '20mbit', classes: [{ name: 'db', rate: '5mbit', peers: ['198.18.0.0/24'] }] });
  });

  it.each([
    [{}, /^BandwidthPolicy shop\/p: spec\.podSelector: is required/],
    [{ podSelector: {}, egress: { rate: 'fast' } }, /^BandwidthPolicy shop\/p: spec\.egress\.rate: .*fast/],
    [{ podSelector: {}, egress: { rate: '10mbit', classes: [{ name: 'a', rate: '8mbit' }, { name: 'b', rate: '8mbit' }] } }, /spec\.egress\.classes: class rates add up to 16mbit, above egress\.rate 10mbit/],
    [{ podSelector: {}, ingress: { rate: '10mbit', classes: [{ name: 'a', rate: '1mbit', peers: ['300.1.1.1/32'] }] } }, /spec\.ingress\.classes\[0\]\.peers/],
    [{ podSelector: {}, egress: { rate: '10mbit', classes: [{ name: 'a', rate: '1mbit', ports: [80] }] } }, /spec\.egress\.classes\[0\]\.ports: needs "protocol" beside it/],
    [{ podSelector: {}, egress: { rate: '10mbit', cei: '20mbit' } }, /spec\.egress\.cei: unknown key, did you mean "ceil"\?/],
    [{ podSelector: { matchExpressions: [{ key: 'a', operator: 'In' }] } }, /spec\.podSelector\.matchExpressions\[0\]\.values: must not be empty for operator In/],
    [{ podSelector: {}, priority: 1.5 }, /spec\.priority: must be a whole number/],
    [{ podSelector: {}, network: '' }, /spec\.network: must be a network name/],
    [{ podSelector: {}, egres: {} }, /spec\.egres: unknown key/],
  ])('refuses %j naming the field', (spec, expected) => {
    expect(problem(spec)).toMatch(expected);
  });
});

describe('precedence between policies', () => {
  const pod = { namespace: 'shop', labels: { app: 'web' } };
  const all = [
    policy('low', { podSelector: {}, priority: 0, egress: egress('10mbit'), ingress: egress('11mbit') }),
    policy('high', { podSelector: { matchLabels: { app: 'web' } }, priority: 5, egress: egress('20mbit') }),
    policy('also-high', { podSelector: {}, priority: 5, egress: egress('21mbit') }),
    policy('net1-only', { podSelector: {}, network: 'net1', priority: -3, egress: egress('30mbit') }),
    policy('elsewhere', { podSelector: {}, priority: 99, egress: egress('1mbit') }, 'other'),
    policy('unselected', { podSelector: { matchLabels: { app: 'db' } }, priority: 99, egress: egress('2mbit') }),
  ];
  const candidates = selecting(all, pod);

  it('only policies of the pod\'s namespace whose selector selects it apply, in precedence order', () => {
    expect(candidates.map((candidate) => candidate.key)).toEqual(['shop/net1-only', 'shop/also-high', 'shop/high', 'shop/low']);
  });

  it('the highest priority wins, ties by name; each direction from the first policy that sets it', () => {
    expect(resolveForNetwork(candidates, 'net0')).toEqual({ egress: { name: 'shop/also-high', tree: egress('21mbit') }, ingress: { name: 'shop/low', tree: egress('11mbit') } });
  });

  it('a policy naming the network beats those naming none, whatever their priority; one naming another network is ignored', () => {
    expect(resolveForNetwork(candidates, 'net1')?.egress?.name).toBe('shop/net1-only');
    expect(resolveForNetwork(candidates, 'net2')?.egress?.name).toBe('shop/also-high');
  });

  it('nothing selects: nothing to resolve', () => {
    expect(resolveForNetwork(selecting(all, { namespace: 'empty', labels: {} }), 'net0')).toBeUndefined();
  });
});

describe('a policy as an input of the policy in force', () => {
  const config = { cniVersion: '1.0.0', name: 'net', type: 'tcqos', egress: { rate: '100mbit' }, ingress: { rate: '50mbit' } };
  const input = { egress: { name: 'shop/web', tree: { rate: '30mbit', classes: [{ name: 'db', rate: '10mbit', peers: ['198.18.0.3/32'] }] } } };

  it('replaces the conflist\'s tree in its direction, source policy; the other direction stays the conflist\'s', async () => {
    const derived = await derivePolicy({ config, policy: input });
    expect(derived.sources).toEqual({ egress: 'policy', ingress: 'config' });
    expect(derived.policy.egress?.rate).toBe(30e6);
    expect(derived.policy.egress?.classes.map((c) => c.name)).toEqual(['db', 'default']);
  });

  it('is fitted under the cap as an annotation is, with a notice naming the policy', async () => {
    const derived = await derivePolicy({ config, policy: { egress: { name: 'shop/web', tree: { rate: '300mbit' } } } });
    expect(derived.policy.egress?.rate).toBe(100e6);
    expect(derived.notices.join('\n')).toMatch(/^BandwidthPolicy shop\/web: egress fitted under the configured cap/m);
  });

  it('is replaced by the pod\'s own annotation', async () => {
    const derived = await derivePolicy({ config, policy: input, annotations: { 'tcqos.io/policy': JSON.stringify({ ingress: { rate: '5mbit' } }) } });
    expect(derived.sources).toEqual({ egress: 'config', ingress: 'annotation' });
  });

  it('is tightened by kubernetes.io/egress-bandwidth (source runtime when it lowered it)', async () => {
    const derived = await derivePolicy({ config, policy: input, runtime: { egressRate: 20e6, egressBurst: 2 ** 32 - 1 } });
    expect(derived.policy.egress?.ceil).toBe(20e6);
    expect(derived.sources.egress).toBe('runtime');
  });

  it('an invalid tree is refused naming the policy and the field as written in it', async () => {
    await expect(derivePolicy({ config, policy: { egress: { name: 'shop/web', tree: { rate: '1x' } } } })).rejects.toThrow(/^BandwidthPolicy shop\/web: spec\.egress\.rate: /);
  });
});

describe('the per-pod entries the plugin reads', () => {
  let stateDir: string;
  beforeAll(() => {
    stateDir = mkdtempSync(join(tmpdir(), 'tcqos-entries-'));
  });
  afterAll(() => rmSync(stateDir, { recursive: true, force: true }));
  const entry = { version: 1 as const, namespace: 'shop', name: 'web-0', uid: 'u1', policies: [{ key: 'shop/web', priority: 0, trees: { egress: egress('10mbit') } }] };

  it('are written atomically and read back by namespace, name and uid', () => {
    const entries = new PolicyEntries(stateDir);
    entries.write(entry);
    expect(entries.read({ namespace: 'shop', name: 'web-0', uid: 'u1' }).entry).toEqual(entry);
    expect(entries.read({ namespace: 'shop', name: 'web-0' }).entry).toEqual(entry);
    // an earlier pod of the same name: not this pod's entry
    expect(entries.read({ namespace: 'shop', name: 'web-0', uid: 'u2' })).toEqual({});
    expect(entries.read({ namespace: 'shop', name: 'web-1' })).toEqual({});
    expect(entries.pods().map((pod) => pod.name)).toEqual(['web-0']);
    entries.remove(entry);
    expect(entries.read(entry)).toEqual({});
  });

  it('refuse what is not an entry: a name that is no pod name, a symlink, a file that is not an entry', () => {
    const entries = new PolicyEntries(stateDir);
    entries.write(entry);
    expect(entries.read({ namespace: '../x', name: 'web-0' }).problem).toMatch(/is not a pod's namespace and name/);
    symlinkSync(`${stateDir}/policies/shop_web-0.json`, `${stateDir}/policies/shop_link.json`);
    expect(entries.read({ namespace: 'shop', name: 'link' }).problem).toMatch(/a symlink/);
    writeFileSync(`${stateDir}/policies/shop_bad.json`, JSON.stringify({ ...entry, name: 'bad', policies: [{ key: 'x' }] }));
    expect(entries.read({ namespace: 'shop', name: 'bad' }).problem).toMatch(/policies\[0\] is not a policy/);
  });
});
