/**
 * Which nodes' status entries count as gone: only those a list taken after them lacks, listed on
 * demand, at most once a minute, and a failed list drops nothing.
 */
import { describe, expect, it } from 'vitest';
import { NodeRoster } from '../../src/agent/node-roster.ts';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined } as never;
const T0 = Date.parse('2026-12-03T12:00:00Z');
const at = (ms: number) => new Date(T0 + ms).toISOString();

function roster(answers: Array<readonly string[] | Error>): { roster: NodeRoster; lists: () => number; advance: (ms: number) => void } {
  let now = T0;
  let lists = 0;
  const list = async () => {
    const answer = answers[Math.min(lists++, answers.length - 1)]!;
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return { roster: new NodeRoster(list, quiet, () => now), lists: () => lists, advance: (ms) => (now += ms) };
}

describe('the node roster', () => {
  it('lists nothing for no entries, and names a node gone only when a list after its entry lacks it', async () => {
    const { roster: r, lists, advance } = roster([['a']]);
    expect(await r.gone([])).toEqual(new Set());
    expect(lists()).toBe(0);
    advance(5 * 60_000);
    // b wrote 5 min before the list; c 30 s before it (within the clocks' margin); a is listed
    expect(await r.gone([{ node: 'a', updatedAt: at(0) }, { node: 'b', updatedAt: at(0) }, { node: 'c', updatedAt: at(5 * 60_000 - 30_000) }])).toEqual(new Set(['b']));
    expect(lists()).toBe(1);
  });

  it('lists again for an entry newer than its list, but not within a minute of the last', async () => {
    const { roster: r, lists, advance } = roster([['a'], ['a', 'n']]);
    advance(120_000);
    expect(await r.gone([{ node: 'a', updatedAt: at(0) }])).toEqual(new Set());
    advance(30_000);
    const fresh = { node: 'n', updatedAt: at(140_000) };
    expect(await r.gone([fresh])).toEqual(new Set());
    expect(lists(), 'not within a minute').toBe(1);
    advance(60_000);
    expect(await r.gone([fresh])).toEqual(new Set());
    expect(lists(), 'listed again: n is there').toBe(2);
  });

  it('drops nothing when the list fails, and tries again a minute later', async () => {
    const { roster: r, lists, advance } = roster([new Error('403 Forbidden'), ['a']]);
    advance(120_000);
    const old = { node: 'x', updatedAt: at(0) };
    expect(await r.gone([old])).toEqual(new Set());
    advance(10_000);
    expect(await r.gone([old])).toEqual(new Set());
    expect(lists()).toBe(1);
    advance(60_000);
    expect(await r.gone([old])).toEqual(new Set(['x']));
    expect(lists()).toBe(2);
  });
});
