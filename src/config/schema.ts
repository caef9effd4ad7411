/**
 * The JSON Schemas tcqos reads: the network configuration, the tcqos.io/policy annotation (the
 * same direction schema, so an annotation is checked by the same rules with the same messages)
 * and the runtime's bandwidth object. ajv compiles them at build time (scripts/gen-validator.ts)
 * into standalone code, so no schema is compiled when a pod starts. Units are checked by the
 * normaliser (units.ts), which names the field in its message.
 */
import { CGROUP_ROOT_PATTERN, IFNAME_PATTERN } from './names.ts';
import { LIMITS } from './units.ts';

const rate = { type: ['integer', 'string'], maxLength: 32 };
const size = { type: ['integer', 'string'], maxLength: 32 };
/** The reference plugin's keys are unsigned integers (bits/s and bits). */
const referenceNumber = { type: 'integer', minimum: 0 };
const cidrList = { type: 'array', maxItems: LIMITS.maxPeersPerClass, items: { type: 'string', maxLength: 64 } };
/** A file or directory on the node: absolute (whether it is under /proc, /sys or /dev is checked in settings.ts). */
const absolutePath = { type: 'string', minLength: 2, maxLength: 4096, pattern: '^/' };

/** containerd and CRI-O hand every pod annotation to a plugin that declares this capability. */
export const POD_ANNOTATIONS_KEY = 'io.kubernetes.cri.pod-annotations';

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

/** One direction's class tree: in the conflist (the admin's cap) and in the tcqos.io/policy annotation. */
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
      properties: {
        bandwidth: referenceBandwidth,
        [POD_ANNOTATIONS_KEY]: { type: 'object', additionalProperties: { type: 'string' } },
      },
    },
    // The reference bandwidth plugin's keys, so its users only change `type`.
    ...referenceBandwidth.properties,
    // The seed's model: a tree of classes per direction.
    egress: direction,
    ingress: direction,
    maxBurst: size,
    logFile: absolutePath,
    logLevel: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
    stateDir: absolutePath,
    hostSide: { type: 'boolean' },
    uplink: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'capacity'],
      properties: {
        name: { type: 'string', pattern: IFNAME_PATTERN.source },
        capacity: rate,
        reserve: rate,
        maxGuaranteePerAttachment: rate,
        enforce: { type: 'boolean' },
      },
    },
    cgroupRoot: { type: 'string', maxLength: 4096, pattern: CGROUP_ROOT_PATTERN.source },
  },
} as const;

/** The tcqos.io/policy annotation: the conflist's directions, nothing else. */
export const policyAnnotationSchema = {
  $id: 'tcqos-policy-annotation',
  type: 'object',
  additionalProperties: false,
  properties: { egress: direction, ingress: direction },
} as const;

/** runtimeConfig.bandwidth when it comes apart from the configuration (the agent, a registry record). */
export const runtimeBandwidthSchema = { $id: 'tcqos-runtime-bandwidth', ...referenceBandwidth } as const;
