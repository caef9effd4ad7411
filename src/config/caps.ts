/** The admin's cap for one direction: the conflist's class tree, or its reference plugin keys. */
import { checkBurstTime } from './bursts.ts';
import { ConfigError } from './errors.ts';
import type { Direction, DirectionPolicy } from './policy.ts';
import type { RawConfig } from './raw.ts';
import { referenceLimit } from './reference-limits.ts';
import { directionTree, singleClassDirection } from './tree.ts';

export function capFor(config: RawConfig, direction: Direction): DirectionPolicy | undefined {
  const tree = config[direction];
  const flat = referenceLimit(config, direction, '');
  if (tree && flat) throw new ConfigError(`${direction}Rate`, `use either "${direction}Rate" or "${direction}", not both`);
  if (tree) return directionTree(tree, direction);
  if (!flat) return undefined;
  checkBurstTime(`${direction}Burst`, flat.burst, flat.rate);
  return singleClassDirection(flat.rate, flat.burst);
}
