/** The shapes the schemas (schema.ts) guarantee, before units, CIDRs and cross-field rules are checked. */
import type { Protocol } from './policy.ts';

export type Quantity = number | string;

export interface RawClass {
  readonly name: string;
  readonly rate: Quantity;
  readonly ceil?: Quantity;
  readonly burst?: Quantity;
  readonly priority?: number;
  readonly peers?: readonly string[];
  readonly protocol?: Protocol;
  readonly ports?: readonly number[];
}

export interface RawDirection {
  readonly rate: Quantity;
  readonly ceil?: Quantity;
  readonly burst?: Quantity;
  readonly default?: string;
  readonly classes?: readonly RawClass[];
}

/** The reference plugin's keys: bits per second and bits. */
export interface RawBandwidth {
  readonly ingressRate?: number;
  readonly ingressBurst?: number;
  readonly egressRate?: number;
  readonly egressBurst?: number;
  readonly unshapedSubnets?: readonly string[];
  readonly shapedSubnets?: readonly string[];
}

/** The tcqos.io/policy annotation's document. */
export interface RawDirections {
  readonly egress?: RawDirection;
  readonly ingress?: RawDirection;
}

export interface RawUplink {
  readonly name: string;
  readonly capacity: Quantity;
  readonly reserve?: Quantity;
  readonly maxGuaranteePerAttachment?: Quantity;
  readonly enforce?: boolean;
}

export interface RawConfig extends RawBandwidth, RawDirections {
  readonly cniVersion: string;
  readonly name?: string;
  readonly maxBurst?: Quantity;
  readonly logFile?: string;
  readonly logLevel?: string;
  readonly stateDir?: string;
  readonly hostSide?: boolean;
  readonly uplink?: RawUplink;
  readonly cgroupRoot?: string;
  readonly runtimeConfig?: {
    readonly bandwidth?: RawBandwidth;
    readonly 'io.kubernetes.cri.pod-annotations'?: Readonly<Record<string, string>>;
  };
}
