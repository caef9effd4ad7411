/**
 * The JSON Schema of a tcqos network configuration. ajv compiles it at build time
 * (scripts/gen-validator.ts) into standalone code, so no schema is compiled when a pod starts.
 * Units are checked by the normaliser (units.ts), which names the field in its message.
 */
import { LIMITS } from './units.ts';

const rate = { type: ['integer', 'string'], maxLength: 32 };
const size = { type: ['integer', 'string'], maxLength: 32 };
/** The reference plugin's keys are unsigned integers (bits/s and bits). */
const referenceNumber = { type: 'integer', minimum: 0 };
const cidrList = { type: 'array', maxItems: LIMITS.maxPeersPerClass, items: { type: 'string', maxLength: 64 } };

const referenceBandwidth = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ingressRate: referenceNumber,
    ingressBurst: referenceNumber,
    egressRate: referenceNumber,
    egressBurst: referenceNumber,
    unshapedSubnets: cidrList,
    shapedSubnets: cidrList,
  },
};

const shapedClass = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'rate'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: LIMITS.maxClassNameLength, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' },
    rate,
    ceil: rate,
    burst: size,
    priority: { type: 'integer', minimum: 0, maximum: LIMITS.maxPriority },
    peers: { ...cidrList, minItems: 1 },
    protocol: { enum: ['tcp', 'udp', 'sctp', 'icmp', 'icmpv6'] },
    ports: {
      type: 'array',
      minItems: 1,
      maxItems: LIMITS.maxPortsPerClass,
      items: { type: 'integer', minimum: 1, maximum: 65535 },
    },
  },
  dependencies: { ports: ['protocol'] },
};

const direction = {
  type: 'object',
  additionalProperties: false,
  required: ['rate'],
  properties: {
    rate,
    ceil: rate,
    burst: size,
    default: { type: 'string', maxLength: LIMITS.maxClassNameLength },
    classes: { type: 'array', maxItems: LIMITS.maxClassesPerDirection, items: shapedClass },
  },
};

export const configSchema = {
  $id: 'tcqos-config',
  type: 'object',
  required: ['cniVersion', 'type'],
  additionalProperties: false,
  properties: {
    // Keys every CNI plugin configuration may carry.
    cniVersion: { type: 'string', maxLength: 16 },
    cniVersions: { type: 'array', items: { type: 'string' } },
    name: { type: 'string', maxLength: 256 },
    type: { type: 'string', maxLength: 256 },
    args: { type: 'object' },
    capabilities: { type: 'object' },
    ipam: { type: 'object' },
    dns: { type: 'object' },
    prevResult: { type: 'object' },
    runtimeConfig: {
      type: 'object',
      properties: { bandwidth: referenceBandwidth },
    },
    // The reference bandwidth plugin's keys, so its users only change `type`.
    ...referenceBandwidth.properties,
    // The seed's model: a tree of classes per direction.
    egress: direction,
    ingress: direction,
    maxBurst: size,
    logFile: { type: 'string', minLength: 2, maxLength: 4096, pattern: '^/' },
    logLevel: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
  },
} as const;
