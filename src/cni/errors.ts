/** CNI errors: a code from the spec's table (or tcqos's own, 100+), a one-line message, details. */
import { oneLine } from '../config/quote.ts';

export const ErrorCode = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnvironment: 4,
  ioFailure: 5,
  decodeFailure: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
  pluginNotAvailable: 50,
  // tcqos's own codes (the spec leaves 100 and up to plugins).
  commandFailed: 100,
  kernelFeatureMissing: 101,
  foreignQdisc: 102,
  interfaceNotFound: 103,
  stateDrift: 104,
  admissionRefused: 105,
  internal: 999,
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

export class CniError extends Error {
  readonly code: ErrorCodeValue;
  readonly details: string | undefined;
  /** `msg` becomes one printable line (whatever input it repeats); `details` may span lines. */
  constructor(code: ErrorCodeValue, msg: string, details?: string) {
    super(oneLine(msg));
    this.code = code;
    this.details = details;
  }
}
