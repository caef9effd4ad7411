/** Config in unit tests: a conflist entry, a pod's tcqos.io/policy annotation, the message of a refusal. */
import { expect } from 'vitest';
import { derivePolicy } from '../../src/config/derive.ts';
import { ConfigError } from '../../src/config/errors.ts';
import type { PolicyInputs } from '../../src/config/policy.ts';

export const base = { cniVersion: '1.0.0', name: 'net', type: 'tcqos' };

export const policyOf = (document: object) => ({ 'tcqos.io/policy': JSON.stringify(document) });

/** The ConfigError's message the inputs are refused with; fails the test if they are accepted. */
export function refusal(inputs: PolicyInputs): Promise<string> {
  return refusalOf(() => derivePolicy(inputs));
}

/** The ConfigError's message `work` is refused with; fails the test if it is accepted. */
export async function refusalOf(work: () => Promise<unknown>): Promise<string> {
  try {
    await work();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('accepted, where a refusal was expected');
}
