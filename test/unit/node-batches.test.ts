import { describe, expect, it } from 'vitest';
import { Coalescer } from '../../src/netns/coalesce.ts';
import { NodeBatches } from '../../src/netns/node-batches.ts';
import type { ToolRun } from '../../src/netns/session.ts';
import type { ShowCommand, Shown } from '../../src/netns/show.ts';
import type { LinkInfo } from '../../src/tc/types.ts';

/** An answerer whose calls finish only when the test says so. */
function heldAnswers() {
  const calls: { questions: readonly number[]; finish: (error?: Error) => void }[] = [];
  const coalescer = new Coalescer<number, string>(
    (questions) =>
      new Promise((resolve, reject) => {
        calls.push({ questions, finish: (error) => (error ? reject(error) : resolve(questions.map((q) => `answer ${q}`))) });
      }),
  );
  return { coalescer, calls };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('Coalescer', () => {
  it('answers the questions of one turn with one call, and those asked meanwhile with one next call', async () => {
    const { coalescer, calls } = heldAnswers();
    const first = [coalescer.ask(1), coalescer.ask(2)];
    await turn();
    expect(calls.map((call) => call.questions)).toEqual([[1, 2]]);
    const meanwhile = [coalescer.ask(3), coalescer.ask(4), coalescer.ask(5)];
    await turn();
    // nothing asked after a call started is answered by it
    expect(calls).toHaveLength(1);
    calls[0]!.finish();
    expect(await Promise.all(first)).toEqual(['answer 1', 'answer 2']);
    await turn();
    expect(calls.map((call) => call.questions)).toEqual([[1, 2], [3, 4, 5]]);
    calls[1]!.finish();
    expect(await Promise.all(meanwhile)).toEqual(['answer 3', 'answer 4', 'answer 5']);
  });

  it('fails only the questions of a call that failed, and goes on answering', async () => {
    const { coalescer, calls } = heldAnswers();
    const failing = coalescer.ask(1);
    await turn();
    const later = coalescer.ask(2);
    calls[0]!.finish(new Error('tc could not start'));
    await expect(failing).rejects.toThrow('tc could not start');
    await turn();
    calls[1]!.finish();
    expect(await later).toBe('answer 2');
    const again = coalescer.ask(3);
    await turn();
    calls[2]!.finish();
    expect(await again).toBe('answer 3');
  });
});

describe('NodeBatches', () => {
  const link = (name: string): LinkInfo => ({ name, kind: 'veth', mtu: 1500 }) as LinkInfo;

  it("gives each asker the outputs of its own commands and only the links it named, from one read", async () => {
    const shown: ShowCommand[][] = [];
    const listed: string[][] = [];
    const reads = new NodeBatches({
      change: () => Promise.reject(new Error('not asked')),
      show: async (commands) => {
        shown.push([...commands]);
        return commands.map((command): Shown => ({ qdiscs: [{ kind: command.dev } as never] }));
      },
      links: async (devices) => {
        listed.push([...devices]);
        return devices.filter((device) => device !== 'gone').map(link);
      },
    });
    const [a, b] = await Promise.all([
      reads.show([
        { show: 'qdisc', dev: 'veth-a' },
        { show: 'class', dev: 'veth-a' },
      ]),
      reads.show([{ show: 'qdisc', dev: 'veth-b' }]),
    ]);
    expect(shown).toHaveLength(1);
    expect(a!.map((one) => (one as { qdiscs: { kind: string }[] }).qdiscs[0]!.kind)).toEqual(['veth-a', 'veth-a']);
    expect(b!.map((one) => (one as { qdiscs: { kind: string }[] }).qdiscs[0]!.kind)).toEqual(['veth-b']);
    const [linksA, linksB] = await Promise.all([reads.links(['veth-a', 'tqifb-a']), reads.links(['veth-a', 'gone'])]);
    expect(listed).toEqual([['veth-a', 'tqifb-a', 'gone']]);
    expect(linksA.map((one) => one.name)).toEqual(['veth-a', 'tqifb-a']);
    expect(linksB.map((one) => one.name)).toEqual(['veth-a']);
  });

  it('runs the changes of several askers in one tc run; a failing line fails its asker only, numbered in its own lines, and those after it run again', async () => {
    const runs: string[][] = [];
    // tc -batch as it behaves: lines in order, stopping at the first that fails
    const tc = async (lines: readonly string[]): Promise<ToolRun> => {
      runs.push([...lines]);
      const bad = lines.findIndex((line) => line.includes('bad'));
      if (bad < 0) return { command: 'tc -batch -', exitCode: 0, stdout: '', stderr: '' };
      return { command: 'tc -batch -', exitCode: 1, stdout: '', stderr: `RTNETLINK answers: Invalid argument\nCommand failed -:${bad + 1}\n` };
    };
    const batches = new NodeBatches({ show: () => Promise.reject(new Error('not asked')), links: () => Promise.reject(new Error('not asked')), change: tc });
    const outcomes = await Promise.all([
      batches.change(['class change a1', 'class change a2']),
      batches.change(['class change b1', 'bad b2', 'class change b3']),
      batches.change(['class change c1']),
    ]);
    expect(outcomes.map((outcome) => outcome.exitCode)).toEqual([0, 1, 0]);
    expect(outcomes[1]!.stderr).toContain('Command failed -:2\n');
    expect(runs).toEqual([
      ['class change a1', 'class change a2', 'class change b1', 'bad b2', 'class change b3', 'class change c1'],
      ['class change c1'],
    ]);
  });

  it('gives every asker a failure that is no line of theirs (tc could not run at all)', async () => {
    const broken: ToolRun = { command: 'tc -batch -', exitCode: 127, stdout: '', stderr: 'tc: not found' };
    const batches = new NodeBatches({ show: () => Promise.reject(new Error('not asked')), links: () => Promise.reject(new Error('not asked')), change: async () => broken });
    const outcomes = await Promise.all([batches.change(['class change a']), batches.change(['class change b'])]);
    expect(outcomes).toEqual([broken, broken]);
  });
});
