/** What changes between two policies in force, for people: one line per direction, class or rule set. Pure. */
import { DIRECTIONS, type DirectionPolicyJson, type PolicyJson } from '../config/policy.ts';
import { humanBytes, humanRate } from './format.ts';

type ClassJson = DirectionPolicyJson['classes'][number];

function describeDirection(policy: DirectionPolicyJson): string {
  const count = policy.classes.length;
  return `rate ${humanRate(policy.rate)}, ceil ${humanRate(policy.ceil)}, ${count} class${count === 1 ? '' : 'es'}`;
}

function describeClass(cls: ClassJson): string {
  return `rate ${humanRate(cls.rate)}, ceil ${humanRate(cls.ceil)}${cls.unshaped ? ', unshaped' : ''}`;
}

/** "rate 40 Mbit/s -> 10 Mbit/s" for each of the named figures that differ. */
function changedFigures<T extends object>(before: T, after: T, figures: ReadonlyArray<readonly [keyof T & string, (value: never) => string]>): string[] {
  return figures.flatMap(([key, show]) => {
    const a = before[key] as unknown;
    const b = after[key] as unknown;
    if (a === b) return [];
    const text = (value: unknown) => (value === undefined ? 'auto' : show(value as never));
    return [`${key} ${text(a)} -> ${text(b)}`];
  });
}

const DIRECTION_FIGURES = [
  ['rate', humanRate],
  ['ceil', humanRate],
  ['burst', humanBytes],
  ['defaultClass', String],
] as const;

const CLASS_FIGURES = [
  ['rate', humanRate],
  ['ceil', humanRate],
  ['burst', humanBytes],
  ['priority', String],
  ['unshaped', String],
] as const;

export function policyChanges(previous: PolicyJson, next: PolicyJson): string[] {
  const lines: string[] = [];
  for (const direction of DIRECTIONS) {
    const before = previous[direction];
    const after = next[direction];
    if (!before && !after) continue;
    if (!after) {
      lines.push(`${direction}: shaping removed (was ${describeDirection(before!)})`);
      continue;
    }
    if (!before) {
      lines.push(`${direction}: shaping added (${describeDirection(after)})`);
      continue;
    }
    const figures = changedFigures(before, after, DIRECTION_FIGURES);
    if (figures.length) lines.push(`${direction}: ${figures.join(', ')}`);
    for (const cls of after.classes) {
      const old = before.classes.find((c) => c.name === cls.name);
      if (!old) {
        lines.push(`${direction} class ${cls.name}: added (${describeClass(cls)})`);
        continue;
      }
      const changed = changedFigures(old, cls, CLASS_FIGURES);
      if (changed.length) lines.push(`${direction} class ${cls.name}: ${changed.join(', ')}`);
    }
    for (const old of before.classes) {
      if (!after.classes.some((c) => c.name === old.name)) lines.push(`${direction} class ${old.name}: removed (was ${describeClass(old)})`);
    }
    if (JSON.stringify(before.rules) !== JSON.stringify(after.rules)) {
      lines.push(`${direction}: matching rules changed (${before.rules.length} -> ${after.rules.length} rule${after.rules.length === 1 ? '' : 's'})`);
    }
  }
  return lines;
}
