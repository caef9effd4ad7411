/**
 * The CNI commands' view of configuration: one network configuration (runtimeConfig included) ->
 * the policy in force. A thin wrapper over derivePolicy, kept while the commands move to it.
 */
import { derivePolicy } from './derive.ts';
import type { DerivedPolicy } from './policy.ts';

export { IMPLICIT_DEFAULT_CLASS, UNSHAPED_CLASS } from './policy.ts';

export type NormalizedConfig = Pick<DerivedPolicy, 'policy' | 'settings' | 'warnings' | 'notices'>;

export async function normalizeConfig(input: Record<string, unknown>): Promise<NormalizedConfig> {
  const { policy, settings, warnings, notices } = await derivePolicy({ config: input });
  return { policy, settings, warnings, notices };
}
