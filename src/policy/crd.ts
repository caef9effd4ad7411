/**
 * The BandwidthPolicy CustomResourceDefinition, made from the JSON Schema the plugin validates
 * with (src/config/schema.ts's direction schema, through policyAnnotationSchema), so a policy is
 * checked by the API server with the rules ADD applies, as far as a structural schema can say them.
 * scripts/gen-crd.ts writes it to deploy/bandwidthpolicy-crd.yaml; a test fails when they differ.
 *
 * What the conversion changes, and why (Kubernetes' structural schema rules):
 * - `type: [integer, string]` (a rate or size) is `x-kubernetes-int-or-string: true` (with the
 *   anyOf integer/string pattern the API server allows): types are single names there.
 * - `additionalProperties: false` goes: it may not sit beside `properties`; the API server prunes
 *   unknown fields, and refuses them outright under strict field validation (kubectl's default).
 * - `dependencies` (ports needs protocol) is a CEL rule (`x-kubernetes-validations`), which the
 *   API server evaluates: JSON Schema's keyword is not allowed in a CRD.
 * - `enum` without a type gets the type of its values (every field has a type).
 * Any other keyword stops the generator: a schema change must be looked at here first.
 */
import { policyAnnotationSchema } from '../config/schema.ts';
import { MAX_NETWORK_NAME, POLICY_GROUP, POLICY_KIND, POLICY_PLURAL, POLICY_VERSION, PRIORITY_RANGE } from './object.ts';

type Schema = Readonly<Record<string, unknown>>;
export type OpenApiSchema = Record<string, unknown>;

const COPIED = ['required', 'enum', 'pattern', 'minLength', 'maxLength', 'minimum', 'maximum', 'minItems', 'maxItems', 'description'];

/** A JSON Schema (the subset tcqos's schemas use) as a structural OpenAPI v3 schema; `at` names the node in errors. */
export function structural(schema: Schema, at = '(root)'): OpenApiSchema {
  const out: OpenApiSchema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (COPIED.includes(key)) {
      out[key] = value;
    } else if (key === 'type') {
      if (typeof value === 'string') out['type'] = value;
      else if (Array.isArray(value) && value.length === 2 && value.includes('integer') && value.includes('string')) {
        out['x-kubernetes-int-or-string'] = true;
        out['anyOf'] = [{ type: 'integer' }, { type: 'string' }];
      } else throw new Error(`${at}: no structural equivalent for type ${JSON.stringify(value)}`);
    } else if (key === 'properties') {
      out['properties'] = Object.fromEntries(Object.entries(value as Record<string, Schema>).map(([name, child]) => [name, structural(child, `${at}.${name}`)]));
    } else if (key === 'items') {
      out['items'] = structural(value as Schema, `${at}[]`);
    } else if (key === 'additionalProperties') {
      if (value !== false) throw new Error(`${at}: additionalProperties other than false has no equivalent here`);
    } else if (key === 'dependencies') {
      out['x-kubernetes-validations'] = Object.entries(value as Record<string, readonly string[]>).flatMap(([field, needs]) =>
        needs.map((needed) => ({ rule: `!has(self.${field}) || has(self.${needed})`, message: `${field} needs "${needed}" beside it` })),
      );
    } else if (key !== '$id') {
      throw new Error(`${at}: no structural equivalent for the keyword ${key}`);
    }
  }
  if (out['enum'] && !out['type']) {
    const types = new Set((out['enum'] as unknown[]).map((item) => typeof item));
    if (types.size !== 1 || !types.has('string')) throw new Error(`${at}: an enum without a type must list strings`);
    out['type'] = 'string';
  }
  return out;
}

const DIRECTION_DESCRIPTION = {
  egress: 'What the pods send: the conflist\'s direction schema (rate, ceil, burst, default, classes with peers, protocol, ports, priority). Fitted under the conflist\'s cap; kubernetes.io/egress-bandwidth tightens it.',
  ingress: 'What the pods receive: the conflist\'s direction schema. Fitted under the conflist\'s cap; kubernetes.io/ingress-bandwidth tightens it.',
};

const labelSelector: OpenApiSchema = {
  type: 'object',
  description: 'The pods of this namespace it applies to, as NetworkPolicy\'s podSelector: matchLabels and matchExpressions must all hold; {} selects every pod of the namespace.',
  properties: {
    matchLabels: { type: 'object', additionalProperties: { type: 'string' } },
    matchExpressions: {
      type: 'array',
      items: {
        type: 'object',
        required: ['key', 'operator'],
        properties: {
          key: { type: 'string' },
          operator: { type: 'string', enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] },
          values: { type: 'array', items: { type: 'string' } },
        },
      },
    },
  },
  'x-kubernetes-map-type': 'atomic',
};

const nodeStatus: OpenApiSchema = {
  type: 'object',
  required: ['node'],
  properties: {
    node: { type: 'string', description: 'The node whose agent wrote this entry.' },
    observedGeneration: { type: 'integer', description: 'The metadata.generation this entry describes.' },
    selectedPods: { type: 'integer', description: 'Pods of this node it selects.' },
    shapedPods: { type: 'integer', description: 'Pods of this node shaped by it (an attachment whose policy in force comes from it).' },
    problem: { type: 'string', description: 'Why it is not applied on this node (an invalid spec, an uplink that cannot admit it); the running shaping is kept.' },
    updatedAt: { type: 'string', format: 'date-time' },
  },
};

/** The CustomResourceDefinition object. */
export function bandwidthPolicyCrd(): Record<string, unknown> {
  const directions = policyAnnotationSchema.properties;
  const spec: OpenApiSchema = {
    type: 'object',
    required: ['podSelector'],
    properties: {
      podSelector: labelSelector,
      network: {
        type: 'string',
        minLength: 1,
        maxLength: MAX_NETWORK_NAME,
        description: 'The network (a conflist\'s "name") it is for, as tcqos.io/policy.<network>; absent: every network of the pods it selects. A policy naming the network beats one naming none.',
      },
      priority: {
        type: 'integer',
        format: 'int32',
        default: 0,
        ...PRIORITY_RANGE,
        description: 'Among the policies selecting a pod (of the same network scope), the highest priority wins; ties go to the first name in alphabetical order.',
      },
      egress: { ...structural(directions.egress, 'spec.egress'), description: DIRECTION_DESCRIPTION.egress },
      ingress: { ...structural(directions.ingress, 'spec.ingress'), description: DIRECTION_DESCRIPTION.ingress },
    },
  };
  const status: OpenApiSchema = {
    type: 'object',
    description: 'Written by the tcqos agents: one entry per node, and the totals over them.',
    properties: {
      selector: { type: 'string', description: 'spec.podSelector as kubectl prints selectors.' },
      selectedPods: { type: 'integer', description: 'Pods it selects, on every node.' },
      shapedPods: { type: 'integer', description: 'Pods shaped by it, on every node.' },
      nodeCount: { type: 'integer', description: 'Nodes where it selects pods.' },
      nodes: {
        type: 'array',
        description: "One entry per node where it selects pods, written by that node's agent; a deleted node's entry is dropped by the next agent that writes the status.",
        items: nodeStatus,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['node'],
      },
    },
  };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${POLICY_PLURAL}.${POLICY_GROUP}`, labels: { 'app.kubernetes.io/name': 'tcqos' } },
    spec: {
      group: POLICY_GROUP,
      scope: 'Namespaced',
      names: { plural: POLICY_PLURAL, singular: 'bandwidthpolicy', kind: POLICY_KIND, listKind: `${POLICY_KIND}List`, shortNames: ['bwp'], categories: ['tcqos'] },
      versions: [
        {
          name: POLICY_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'Selector', type: 'string', jsonPath: '.status.selector', description: 'The pods it selects' },
            { name: 'Network', type: 'string', jsonPath: '.spec.network', description: 'The network it is for (empty: all)' },
            { name: 'Priority', type: 'integer', jsonPath: '.spec.priority' },
            { name: 'Selected', type: 'integer', jsonPath: '.status.selectedPods', description: 'Pods it selects, on every node' },
            { name: 'Shaped', type: 'integer', jsonPath: '.status.shapedPods', description: 'Pods shaped by it, on every node' },
            { name: 'Nodes', type: 'integer', jsonPath: '.status.nodeCount', description: 'Nodes where it selects pods' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: 'The bandwidth of the pods it selects (tcqos): per direction a class tree with guarantees and borrowing, applied live on every node and from each pod\'s first packet.',
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec,
                status,
              },
            },
          },
        },
      ],
    },
  };
}
