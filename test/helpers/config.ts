/** Config unit tests' shared pieces: a minimal network config, and the message a refusal carries. */
import { expect } from 'vitest';
import { ConfigError } from '../../src/config/errors.ts';
import { normalizeConfig } from '../../src/config/normalize.ts';

export const BASE_CONFIG = { cniVersion: '1.0.0', name: 'net', type: 'tcqos' };

/** The ConfigError message for BASE_CONFIG plus `extra`; fails the test if the config is accepted. */
export async function refusal(extra: object): Promise<string> {
  try {
    await normalizeConfig({ ...BASE_CONFIG, ...extra });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('config was accepted');
}
