/** Turning what the use cases and the mechanism throw into CNI errors a user can act on. */
import {
  AdmissionError,
  AdmissionFullError,
  ApplyError,
  ConcurrentChangeError,
  DriftError,
  ForeignQdiscError,
  InterfaceMissingError,
  UplinkMismatchError,
} from '../attachment/errors.ts';
import { CniError, ErrorCode } from '../cni/errors.ts';
import type { CommandContext } from '../cni/skel.ts';
import { ConfigError } from '../config/errors.ts';
import { createLogger } from '../log.ts';
import { NetnsEnterError, NetnsUnusableError, ToolError } from '../netns/session.ts';
import { ToolMissingError } from '../netns/tools.ts';
import { LockTimeoutError } from '../state/lock.ts';
import { UnsafeStateDirError } from '../state/state-dir.ts';

function fromApplyError(error: ApplyError): CniError {
  if (error.missingFeature) return new CniError(ErrorCode.kernelFeatureMissing, error.message, error.details);
  if (error.alreadyInstalled) {
    return new CniError(ErrorCode.foreignQdisc, `${error.message.split(':')[0]}: another qdisc is already installed there`, error.details);
  }
  return new CniError(ErrorCode.commandFailed, error.message, error.details);
}

/** For the skel: anything a command threw that is not already a CNI error. */
export function describeFailure(error: unknown, context: Partial<CommandContext>): CniError {
  if (error instanceof ConfigError) return new CniError(ErrorCode.invalidConfig, `invalid tcqos configuration: ${error.message}`);
  if (error instanceof ApplyError) return fromApplyError(error);
  if (error instanceof ToolError) return fromApplyError(new ApplyError('running ip/tc in the pod netns', error.run));
  if (error instanceof ForeignQdiscError) return new CniError(ErrorCode.foreignQdisc, error.message);
  if (error instanceof InterfaceMissingError) return new CniError(ErrorCode.interfaceNotFound, error.message);
  if (error instanceof DriftError) return new CniError(ErrorCode.stateDrift, error.message, error.differences.join('\n'));
  if (error instanceof AdmissionError || error instanceof AdmissionFullError) return new CniError(ErrorCode.admissionRefused, error.message);
  if (error instanceof UplinkMismatchError) return new CniError(ErrorCode.invalidConfig, `invalid tcqos configuration: ${error.message}`);
  if (error instanceof ConcurrentChangeError || error instanceof LockTimeoutError) return new CniError(ErrorCode.tryAgainLater, error.message);
  if (error instanceof NetnsUnusableError || error instanceof NetnsEnterError) return new CniError(ErrorCode.invalidEnvironment, `CNI_NETNS ${error.message}`);
  if (error instanceof ToolMissingError) return new CniError(ErrorCode.commandFailed, error.message);
  if (error instanceof UnsafeStateDirError) return new CniError(ErrorCode.ioFailure, error.message);
  const env = context.env;
  createLogger({ logLevel: 'error' }, { command: env?.command ?? '', containerId: env?.containerId ?? '', ifname: env?.ifname ?? '' }).error(
    { err: error },
    'unexpected failure',
  );
  return new CniError(ErrorCode.internal, `tcqos internal error: ${error instanceof Error ? error.message : String(error)}`);
}
