/**
 * The BandwidthPolicy CRD (deploy/bandwidthpolicy-crd.yaml): generated from the plugin's own JSON
 * Schema and up to date, a valid CustomResourceDefinition (kubernetes-models) whose schema is
 * structural by Kubernetes' rules, and — over a corpus of policies — refusing exactly what the
 * plugin's schema refuses, never what tcqos accepts. What only the agent can refuse (units, class
 * rates adding up, CIDRs...) is listed here: those refusals become the "invalid policy" Events.
 *
 * The API server's side is modelled with ajv on the generated OpenAPI schema (unknown fields
 * refused, as strict field validation does, kubectl's default) and its CEL rules evaluated with
 * @bufbuild/cel, as the API server evaluates x-kubernetes-validations.
 */
import { readFileSync } from 'node:fs';
import { run as celRun } from '@bufbuild/cel';
import Ajv from 'ajv';
import fc from 'fast-check';
import { load } from 'js-yaml';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1';
import { beforeAll, describe, expect, it } from 'vitest';
import { crdText } from '../../scripts/crd-text.ts';
import { checkPolicyDirectionSchema } from '../../src/config/bandwidth-policy.ts';
import { loadCidrSupport } from '../../src/config/cidr.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { checkPolicy } from '../../src/policy/object.ts';
import { structural } from '../../src/policy/crd.ts';

const FILE = new URL('../../deploy/bandwidthpolicy-crd.yaml', import.meta.url);
type Node = Record<string, unknown>;
const crd = load(readFileSync(FILE, 'utf8')) as { spec: { versions: Array<{ schema: { openAPIV3Schema: Node } }> } };
const openApi = crd.spec.versions[0]!.schema.openAPIV3Schema;
const specSchema = (openApi['properties'] as Record<string, Node>)['spec']!;

/** Keywords a CRD's schema may not use (apiextensions' validation); `additionalProperties` only without `properties`. */
const FORBIDDEN = ['$ref', '$schema', 'id', '$id', 'definitions', 'dependencies', 'patternProperties', 'additionalItems'];

/** Kubernetes' structural schema rules, as apiextensions checks them, for the parts this schema uses. */
function structuralProblems(node: Node, at: string, level: 'root' | 'field' | 'item'): string[] {
  const problems: string[] = [];
  for (const key of FORBIDDEN) if (key in node) problems.push(`${at}: ${key} is not supported`);
  if (node['uniqueItems'] === true) problems.push(`${at}: uniqueItems`);
  if (Array.isArray(node['type'])) problems.push(`${at}: type must be one name`);
  if (!node['type'] && !node['x-kubernetes-int-or-string'] && !node['x-kubernetes-preserve-unknown-fields']) problems.push(`${at}: no type (${level})`);
  if (node['x-kubernetes-int-or-string'] && node['type']) problems.push(`${at}: int-or-string with a type`);
  if (node['additionalProperties'] !== undefined && (node['properties'] || node['additionalProperties'] === false)) problems.push(`${at}: additionalProperties beside properties, or false`);
  for (const junctor of ['anyOf', 'allOf', 'oneOf']) {
    for (const nested of (node[junctor] as Node[] | undefined) ?? []) {
      const allowedIntOrString = junctor === 'anyOf' && node['x-kubernetes-int-or-string'] && Object.keys(nested).join() === 'type' && ['integer', 'string'].includes(nested['type'] as string);
      if (!allowedIntOrString && ('type' in nested || 'description' in nested || 'default' in nested)) problems.push(`${at}.${junctor}: type, description or default inside a junctor`);
    }
  }
  if (node['type'] === 'array' && !node['items']) problems.push(`${at}: array without items`);
  if (node['x-kubernetes-list-type'] === 'map') {
    for (const key of node['x-kubernetes-list-map-keys'] as string[]) {
      if (!((node['items'] as Node)['required'] as string[] | undefined)?.includes(key)) problems.push(`${at}: list-map key ${key} must be required`);
    }
  }
  for (const [name, child] of Object.entries((node['properties'] as Record<string, Node> | undefined) ?? {})) problems.push(...structuralProblems(child, `${at}.${name}`, 'field'));
  if (node['items']) problems.push(...structuralProblems(node['items'] as Node, `${at}[]`, 'item'));
  if (typeof node['additionalProperties'] === 'object') problems.push(...structuralProblems(node['additionalProperties'] as Node, `${at}{}`, 'field'));
  return problems;
}

/** The schema as the API server applies it, for ajv: unknown fields refused (strict field validation), Kubernetes' own keywords dropped. */
function asServed(node: Node): Node {
  const out: Node = {};
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith('x-kubernetes-') || ['description', 'format', 'default'].includes(key)) continue;
    if (key === 'properties') out[key] = Object.fromEntries(Object.entries(value as Record<string, Node>).map(([name, child]) => [name, asServed(child)]));
    else if (key === 'items' || (key === 'additionalProperties' && typeof value === 'object')) out[key] = asServed(value as Node);
    else out[key] = value;
  }
  if (node['properties'] && node['additionalProperties'] === undefined && !node['x-kubernetes-preserve-unknown-fields']) out['additionalProperties'] = false;
  return out;
}

/** The x-kubernetes-validations rules that apply to `value` (under `node`), evaluated; the first failing rule's message. */
function celRefusal(node: Node, value: unknown): string | undefined {
  for (const rule of (node['x-kubernetes-validations'] as Array<{ rule: string; message: string }> | undefined) ?? []) {
    if (celRun(rule.rule, { self: value as never }) !== true) return rule.message;
  }
  if (Array.isArray(value) && node['items']) {
    for (const item of value) {
      const refusal = celRefusal(node['items'] as Node, item);
      if (refusal) return refusal;
    }
  } else if (typeof value === 'object' && value !== null && node['properties']) {
    for (const [name, child] of Object.entries(node['properties'] as Record<string, Node>)) {
      if (name in value) {
        const refusal = celRefusal(child, (value as Record<string, unknown>)[name]);
        if (refusal) return refusal;
      }
    }
  }
  return undefined;
}

const ajv = new Ajv.default({ strict: false, allErrors: false });
const servedSpec = ajv.compile(asServed(specSchema));

/** The API server's verdict on a policy's spec: undefined when it accepts it. */
function apiServerRefusal(spec: unknown): string | undefined {
  if (!servedSpec(spec)) return `schema: ${servedSpec.errors?.[0]?.instancePath} ${servedSpec.errors?.[0]?.message}`;
  return celRefusal(specSchema, spec);
}

/** tcqos's verdict (the agent's check of a policy: the plugin's schema and tree rules); undefined when it accepts. */
function tcqosRefusal(spec: unknown): { readonly message: string; readonly bySchema: boolean } | undefined {
  try {
    checkPolicy({ namespace: 'shop', name: 'p', generation: 1, spec });
    return undefined;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return { message: error.message, bySchema: schemaRefuses(spec) };
  }
}

/** Whether the plugin's JSON Schema (not its tree rules) refuses a direction of the spec, or the spec's own shape is wrong. */
function schemaRefuses(spec: unknown): boolean {
  if (typeof spec !== 'object' || spec === null) return true;
  const fields = spec as Record<string, unknown>;
  if (Object.keys(fields).some((key) => !['podSelector', 'network', 'priority', 'egress', 'ingress'].includes(key))) return true;
  for (const direction of ['egress', 'ingress'] as const) {
    if (fields[direction] === undefined) continue;
    try {
      checkPolicyDirectionSchema(fields[direction], direction, 'shop/p');
    } catch {
      return true;
    }
  }
  return false;
}

/**
 * What only the agent can refuse (the CRD's schema accepts it): the field and problem each such
 * refusal names. These become TcqosPolicyInvalid Events on the policy.
 */
const AGENT_ONLY: ReadonlyArray<readonly [string, RegExp]> = [
  ['a rate or size unit (strings are free text to the schema)', /\.(rate|ceil|burst): .*(unit|not a number|below the lowest|above the highest|not a positive size|more than 4GB|BYTES per second)/],
  ['class rates adding up to more than the direction', /classes: class rates add up to/],
  ['a class above its direction, a ceil below its rate', /(is above (egress|ingress)\.(rate|ceil)|is below)/],
  ['a burst too long at its rate', /burst: .*(second|seconds)/],
  ['the default naming no class, or nothing left for unmatched traffic', /\.default: /],
  ['class names (duplicates, "unshaped" reserved)', /\.name: .*(already the name|reserved)/],
  ['peers that are no CIDRs', /\.peers(\[\d+\])?: /],
  ['ports without tcp, udp or sctp; protocol without peers', /\.(ports|peers): (ports need protocol|is required when)/],
  ['a selector requirement\'s values for its operator', /podSelector\.matchExpressions\[\d+\]\.values: must (not )?be empty/],
];

const valid = [
  { podSelector: {} },
  { podSelector: { matchLabels: { app: 'web' } }, egress: { rate: '20mbit' } },
  { podSelector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['a'] }] }, priority: 10, network: 'net1', ingress: { rate: 10_000_000, ceil: '20mbit', burst: '64KiB' } },
  { podSelector: {}, egress: { rate: '100mbit', default: 'rest', classes: [{ name: 'db', rate: '60mbit', ceil: '100mbit', priority: 1, peers: ['198.18.0.0/24', '2001:2::/48'], protocol: 'tcp', ports: [5432] }, { name: 'rest', rate: '40mbit' }] } },
  { podSelector: {}, priority: -5, egress: { rate: '1gbit', classes: [{ name: 'icmp', rate: '1mbit', peers: ['0.0.0.0/0'], protocol: 'icmp' }] } },
];

/** Mutations of a valid spec: each a change a user could make, right or wrong. */
const mutations: ReadonlyArray<readonly [string, (spec: Record<string, unknown>) => unknown]> = [
  ['no podSelector', ({ podSelector: _s, ...rest }) => rest],
  ['an unknown spec key', (spec) => ({ ...spec, egres: { rate: '1mbit' } })],
  ['priority 1.5', (spec) => ({ ...spec, priority: 1.5 })],
  ['priority as a string', (spec) => ({ ...spec, priority: '1' })],
  ['priority above int32', (spec) => ({ ...spec, priority: 2 ** 31 })],
  ['network empty', (spec) => ({ ...spec, network: '' })],
  ['selector operator unknown', (spec) => ({ ...spec, podSelector: { matchExpressions: [{ key: 'a', operator: 'Has' }] } })],
  ['selector In without values', (spec) => ({ ...spec, podSelector: { matchExpressions: [{ key: 'a', operator: 'In' }] } })],
  ['selector Exists with values', (spec) => ({ ...spec, podSelector: { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] } })],
  ['selector label value not a string', (spec) => ({ ...spec, podSelector: { matchLabels: { a: 1 } } })],
  ['egress without rate', (spec) => ({ ...spec, egress: { ceil: '1mbit' } })],
  ['egress rate "fast"', (spec) => ({ ...spec, egress: { rate: 'fast' } })],
  ['egress rate in tc bytes', (spec) => ({ ...spec, egress: { rate: '5000kbps' } })],
  ['egress rate 1.5 (a fraction)', (spec) => ({ ...spec, egress: { rate: 1.5 } })],
  ['egress rate too low', (spec) => ({ ...spec, egress: { rate: 100 } })],
  ['egress rate a long string', (spec) => ({ ...spec, egress: { rate: `${'1'.repeat(40)}mbit` } })],
  ['egress rate true', (spec) => ({ ...spec, egress: { rate: true } })],
  ['egress ceil below rate', (spec) => ({ ...spec, egress: { rate: '10mbit', ceil: '5mbit' } })],
  ['egress burst "64kb"', (spec) => ({ ...spec, egress: { rate: '10mbit', burst: '64kb' } })],
  ['egress unknown key', (spec) => ({ ...spec, egress: { rate: '10mbit', cei: '20mbit' } })],
  ['classes adding up', (spec) => ({ ...spec, egress: { rate: '10mbit', classes: [{ name: 'a', rate: '6mbit' }, { name: 'b', rate: '6mbit' }] } })],
  ['class above its direction', (spec) => ({ ...spec, egress: { rate: '10mbit', classes: [{ name: 'a', rate: '20mbit' }] } })],
  ['duplicate class names', (spec) => ({ ...spec, egress: { rate: '10mbit', classes: [{ name: 'a', rate: '1mbit' }, { name: 'a', rate: '1mbit' }] } })],
  ['class named unshaped', (spec) => ({ ...spec, egress: { rate: '10mbit', classes: [{ name: 'unshaped', rate: '1mbit' }] } })],
  ['class name with a space', (spec) => ({ ...spec, egress: { rate: '10mbit', classes: [{ name: 'a b', rate: '1mbit' }] } })],
  ['class name too long', (spec) => ({ ...spec, egress: { rate: '10mbit', classes: [{ name: 'a'.repeat(33), rate: '1mbit' }] } })],
  ['class without rate', (spec) => ({ ...spec, egress: { rate: '10mbit', classes: [{ name: 'a' }] } })],
  ['class priority 8', (spec) => ({ ...spec, egress: { rate: '10mbit', classes: [{ name: 'a', rate: '1mbit', priority: 8 }] } })],
  ['default naming no class', (spec) => ({ ...spec, egress: { rate: '10mbit', default: 'x', classes: [{ name: 'a', rate: '1mbit' }] } })],
  ['classes taking it all, no default', (spec) => ({ ...spec, egress: { rate: '10mbit', classes: [{ name: 'a', rate: '10mbit' }] } })],
  ['peers not a CIDR', (spec) => ({ ...spec, ingress: { rate: '10mbit', classes: [{ name: 'a', rate: '1mbit', peers: ['300.0.0.0/8'] }] } })],
  ['peers empty', (spec) => ({ ...spec, ingress: { rate: '10mbit', classes: [{ name: 'a', rate: '1mbit', peers: [] }] } })],
  ['ports without protocol', (spec) => ({ ...spec, ingress: { rate: '10mbit', classes: [{ name: 'a', rate: '1mbit', peers: ['198.18.0.0/15'], ports: [80] }] } })],
  ['ports with icmp', (spec) => ({ ...spec, ingress: { rate: '10mbit', classes: [{ name: 'a', rate: '1mbit', peers: ['198.18.0.0/15'], protocol: 'icmp', ports: [80] }] } })],
  ['protocol without peers', (spec) => ({ ...spec, ingress: { rate: '10mbit', classes: [{ name: 'a', rate: '1mbit', protocol: 'tcp' }] } })],
  ['protocol unknown', (spec) => ({ ...spec, ingress: { rate: '10mbit', classes: [{ name: 'a', rate: '1mbit', peers: ['198.18.0.0/15'], protocol: 'gre' }] } })],
  ['port 0', (spec) => ({ ...spec, ingress: { rate: '10mbit', classes: [{ name: 'a', rate: '1mbit', peers: ['198.18.0.0/15'], protocol: 'tcp', ports: [0] }] } })],
  ['65 classes', (spec) => ({ ...spec, egress: { rate: '1gbit', classes: Array.from({ length: 65 }, (_, i) => ({ name: `c${i}`, rate: '1mbit' })) } })],
];

beforeAll(loadCidrSupport);

describe('the BandwidthPolicy CRD', () => {
  it('is generated from the plugin\'s JSON Schema, and deploy/ holds the generator\'s output (else run scripts/gen-crd.ts)', () => {
    expect(readFileSync(FILE, 'utf8')).toBe(crdText());
  });

  it('is a valid CustomResourceDefinition (kubernetes-models)', () => {
    expect(() => new CustomResourceDefinition(crd as never).validate()).not.toThrow();
  });

  it('has a structural schema: a type on every field, no keyword a CRD refuses, int-or-string for rates, a CEL rule for dependencies', () => {
    expect(structuralProblems(openApi, 'openAPIV3Schema', 'root')).toEqual([]);
    const rate = ((specSchema['properties'] as Record<string, Node>)['egress']!['properties'] as Record<string, Node>)['rate'];
    expect(rate).toMatchObject({ 'x-kubernetes-int-or-string': true });
    expect(() => structural({ type: 'object', patternProperties: {} })).toThrow(/no structural equivalent for the keyword patternProperties/);
  });

  it('accepts the commented example in conf/, as tcqos does', () => {
    const example = load(readFileSync(new URL('../../conf/bandwidthpolicy.yaml', import.meta.url), 'utf8')) as { apiVersion: string; kind: string; spec: unknown };
    expect([example.apiVersion, example.kind]).toEqual(['tcqos.io/v1alpha1', 'BandwidthPolicy']);
    expect(apiServerRefusal(example.spec)).toBeUndefined();
    expect(tcqosRefusal(example.spec)).toBeUndefined();
  });

  it('accepts and refuses the same documents as the plugin\'s schema, and never refuses what tcqos accepts', () => {
    const agentOnly: string[] = [];
    const check = (spec: unknown, label: string) => {
      const server = apiServerRefusal(spec);
      const tcqos = tcqosRefusal(spec);
      if (server) {
        expect(tcqos, `${label}: the API server refuses (${server}) what tcqos accepts`).toBeDefined();
      }
      if (tcqos?.bySchema) expect(server, `${label}: tcqos's schema refuses (${tcqos.message}), the API server accepts`).toBeDefined();
      if (tcqos && !server) {
        const category = AGENT_ONLY.find(([, pattern]) => pattern.test(tcqos.message));
        expect(category, `${label}: only the agent refuses it, for a reason not listed: ${tcqos.message}`).toBeDefined();
        agentOnly.push(`${category![0]}: ${tcqos.message}`);
      }
    };
    let documents = 0;
    for (const [index, spec] of valid.entries()) {
      expect(apiServerRefusal(spec), `valid[${index}]`).toBeUndefined();
      expect(tcqosRefusal(spec), `valid[${index}]`).toBeUndefined();
      for (const [name, mutate] of mutations) {
        check(mutate(spec), `valid[${index}] with ${name}`);
        documents++;
      }
    }
    // random documents from the same pieces: every field a right or a wrong value
    const quantity = fc.oneof(fc.constantFrom('10mbit', '1gbit', '5000kbps', '64KiB', '10M', 'fast', '', 1_000_000, 1.5, -1, 100, '1e9'), fc.integer());
    const klass = fc.record(
      {
        name: fc.constantFrom('a', 'b', 'db', 'unshaped', 'a b', ''),
        rate: quantity,
        ceil: quantity,
        burst: quantity,
        priority: fc.constantFrom(0, 7, 8, -1),
        peers: fc.constantFrom(['198.18.0.0/15'], ['2001:2::/48', '198.18.1.1'], ['nope'], []),
        protocol: fc.constantFrom('tcp', 'udp', 'icmp', 'gre'),
        ports: fc.constantFrom([80], [0], [443, 8443]),
      },
      { requiredKeys: [] },
    );
    const direction = fc.record({ rate: quantity, ceil: quantity, burst: quantity, default: fc.constantFrom('a', 'db', 'x'), classes: fc.array(klass, { maxLength: 3 }) }, { requiredKeys: [] });
    const spec = fc.record(
      { podSelector: fc.constantFrom({}, { matchLabels: { app: 'web' } }, { matchExpressions: [{ key: 'a', operator: 'In' }] }), priority: fc.constantFrom(0, 3, 1.5, 'x'), network: fc.constantFrom('net1', ''), egress: direction, ingress: direction },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(spec, (document) => {
        check(document, JSON.stringify(document));
        documents++;
      }),
      { numRuns: 600, seed: 19 },
    );
    const categories = new Set(agentOnly.map((line) => line.split(':')[0]));
    console.info(`${documents} documents; refused by the agent only (the CRD cannot say it), by kind:\n${[...categories].map((category) => `  ${category}`).join('\n')}`);
    expect(categories.size).toBeGreaterThanOrEqual(6);
  });
});
