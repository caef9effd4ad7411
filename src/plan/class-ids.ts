/**
 * Class ids that survive edits. A class keeps its HTB minor for the attachment's life (the registry
 * holds the mapping), so adding, removing or reordering classes changes only the classes concerned,
 * and their counters stay with them.
 */
import type { Direction, Policy } from '../config/policy.ts';
import { FIRST_CLASS_MINOR, LAST_CLASS_MINOR } from '../tc/handles.ts';

export type ClassIdMap = Readonly<Record<string, number>>;
export type AttachmentClassIds = { readonly [D in Direction]?: ClassIdMap };

/**
 * Minors for every class of `names`: the ones `previous` gave keep theirs, new ones take the lowest
 * minor no class had before, so a class added in the edit that removes another is never mistaken
 * for it (its counters start at zero).
 */
export function assignClassIds(names: readonly string[], previous: ClassIdMap = {}): ClassIdMap {
  const ids: Record<string, number> = {};
  const taken = new Set<number>(Object.values(previous));
  for (const name of names) {
    const kept = previous[name];
    if (kept !== undefined && kept >= FIRST_CLASS_MINOR && kept <= LAST_CLASS_MINOR && !Object.values(ids).includes(kept)) ids[name] = kept;
  }
  let next = FIRST_CLASS_MINOR;
  for (const name of names) {
    if (ids[name] !== undefined) continue;
    while (taken.has(next)) next++;
    ids[name] = next;
    taken.add(next);
  }
  return ids;
}

export function assignAttachmentClassIds(policy: Policy, previous: AttachmentClassIds = {}): AttachmentClassIds {
  return {
    ...(policy.egress ? { egress: assignClassIds(policy.egress.classes.map((c) => c.name), previous.egress) } : {}),
    ...(policy.ingress ? { ingress: assignClassIds(policy.ingress.classes.map((c) => c.name), previous.ingress) } : {}),
  };
}
