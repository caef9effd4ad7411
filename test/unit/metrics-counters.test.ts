/**
 * The counter reader on captured `tc -s -j -force -batch` output (iproute2 6.1: qdiscs as JSON,
 * HTB classes as text), and the figures stats makes of it: each counted once, from the object the
 * documentation names.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { directionStats } from '../../src/attachment/stats.ts';
import { carryAcross } from '../../src/attachment/carry.ts';
import { countersFromBatch, countersScript } from '../../src/netns/counters.ts';
import { shownFrom, type ShowCommand } from '../../src/netns/show.ts';

const fixture = (name: string) => readFileSync(new URL(`fixtures/tc-counters/${name}`, import.meta.url), 'utf8');
const IFB = 'tcq9c32a8c7e59e';

describe('countersFromBatch', () => {
  it('gives each device its qdiscs (JSON) and HTB classes (text), tbf pseudo-classes left out', () => {
    const read = countersFromBatch(['eth0', IFB], { exitCode: 0, stdout: fixture('both-devices.stdout'), stderr: '' });
    const eth0 = read.get('eth0')!;
    expect(eth0.qdiscs.map((q) => [q.kind, q.handle, q.root, q.parent])).toEqual([
      ['htb', '7c05:', true, undefined],
      ['tbf', '7c11:', false, '7c05:11'],
      ['tbf', '7c10:', false, '7c05:10'],
      ['ingress', 'ffff:', false, undefined],
    ]);
    expect(eth0.classes.map((c) => c.id)).toEqual(['7c05:11', '7c05:10', '7c05:1']);
    expect(eth0.classes[1]!.counters).toEqual({ bytes: 7614891, packets: 8672, drops: 1030, overlimits: 0, backlogBytes: 0 });
    expect(eth0.qdiscs[2]!.counters).toMatchObject({ drops: 4853, overlimits: 11448 });
    const ifb = read.get(IFB)!;
    expect(ifb.qdiscs.map((q) => q.handle)).toEqual(['7c05:', '7c10:']);
    expect(ifb.classes.map((c) => [c.id, c.counters?.drops])).toEqual([
      ['7c05:10', 194],
      ['7c05:1', 0],
    ]);
  });

  it('leaves out a device that does not exist, whose commands print nothing and fail on stderr', () => {
    const read = countersFromBatch(['eth0', 'tcqdeadbeef0000'], { exitCode: 1, stdout: fixture('ifb-missing.stdout'), stderr: fixture('ifb-missing.stderr') });
    expect([...read.keys()]).toEqual(['eth0']);
    expect(read.get('eth0')!.classes).toHaveLength(3);
  });

  it('tells the documents apart by command when the first device is the missing one', () => {
    const [qdiscs, ...classLines] = fixture('both-devices.stdout').split('\n');
    const eth0Only = [qdiscs, ...classLines.slice(0, classLines.findIndex((line) => line.startsWith('[')))].join('\n');
    const read = countersFromBatch(['gone0', 'eth0'], { exitCode: 1, stdout: eth0Only, stderr: 'Cannot find device "gone0"\nCommand failed -:1\nCannot find device "gone0"\nCommand failed -:2\n' });
    expect([...read.keys()]).toEqual(['eth0']);
    expect(read.get('eth0')!.qdiscs[0]!.counters.drops).toBe(1030);
  });

  it('reads classes printed as JSON (later iproute2), an empty class list included', () => {
    const stdout = [
      '[{"kind":"htb","handle":"7c05:","root":true,"bytes":10,"packets":1,"drops":3,"overlimits":2,"backlog":0}]',
      '[{"class":"htb","handle":"7c05:10","parent":"7c05:1","bytes":10,"packets":1,"drops":3,"overlimits":1,"backlog":0},{"class":"tbf","handle":"7c10:1","parent":"7c10:"}]',
      '[{"kind":"pfifo_fast","handle":"0:","root":true,"bytes":0,"packets":0,"drops":0,"overlimits":0,"backlog":0}]',
      '[]',
    ].join('\n');
    const read = countersFromBatch(['eth0', 'ifb0'], { exitCode: 0, stdout, stderr: '' });
    expect(read.get('eth0')!.classes.map((c) => [c.id, c.counters?.drops])).toEqual([['7c05:10', 3]]);
    expect(read.get('ifb0')).toMatchObject({ qdiscs: [{ kind: 'pfifo_fast' }], classes: [] });
  });

  it('fails on output that does not fit the commands, and on a tc that failed before any command', () => {
    expect(() => countersFromBatch(['eth0'], { exitCode: 0, stdout: 'class htb 7c05:1 root rate 1Mbit\n', stderr: '' })).toThrow(/nothing for "qdisc show dev eth0"/);
    expect(() => countersFromBatch(['eth0'], { exitCode: 0, stdout: '[]\n[{"kind":"htb"}]\n', stderr: '' })).toThrow(/more documents/);
    expect(() => countersFromBatch(['eth0'], { exitCode: 255, stdout: '', stderr: 'Object "-batch" is unknown' })).toThrow(/exit 255/);
  });

  it('asks for both lists of every device, in order, and refuses a name that could bend the batch', () => {
    expect(countersScript(['eth0', IFB])).toBe(`qdisc show dev eth0\nclass show dev eth0\nqdisc show dev ${IFB}\nclass show dev ${IFB}\n`);
    expect(() => countersScript(['eth0\nqdisc del dev eth0 root'])).toThrow();
  });
});

describe('directionStats', () => {
  const read = countersFromBatch(['eth0', IFB], { exitCode: 0, stdout: fixture('both-devices.stdout'), stderr: '' });
  const egress = directionStats(
    'egress',
    {
      rate: 50_000_000,
      ceil: 50_000_000,
      classes: [
        { name: 'db', rate: 20_000_000, ceil: 20_000_000 },
        { name: 'default', rate: 30_000_000, ceil: 30_000_000 },
      ],
    } as never,
    { db: 0x10, default: 0x11 },
    read.get('eth0')!,
  )!;

  it("takes a class's drops from its leaf queue alone (frames), not also from the HTB class", () => {
    const db = egress.classes.find((c) => c.name === 'db')!;
    expect(db).toMatchObject({ classId: '7c05:10', bytes: 7614891, packets: 8672, drops: 4853, overlimits: 11448, backlogBytes: 0 });
  });

  it("makes the direction's drops and overlimits its classes' sums plus what HTB counted outside them", () => {
    const sum = (field: 'drops' | 'overlimits') => egress.classes.reduce((total, c) => total + c[field], 0);
    // The HTB qdisc's 1030 drops are all the db class's (HTB counts them per class too): none outside.
    expect(egress.drops).toBe(sum('drops'));
    expect(egress.overlimits).toBe(sum('overlimits'));
    expect(egress).toMatchObject({ bytes: 7615689, packets: 8683, device: 'eth0' });
  });

  it('counts drops of the HTB qdisc that no class took (its direct queue) in the direction only', () => {
    const device = read.get('eth0')!;
    const withDirect = { ...device, qdiscs: device.qdiscs.map((q) => (q.root ? { ...q, counters: { ...q.counters, drops: q.counters.drops + 5 } } : q)) };
    const stats = directionStats('egress', { rate: 1, ceil: 1, classes: [{ name: 'db', rate: 1, ceil: 1 }] } as never, { db: 0x10 }, withDirect)!;
    expect(stats.drops).toBe(4853 + 0 + 5);
    expect(stats.classes[0]!.drops).toBe(4853);
  });

  it('has no figures for a device whose root is not tcqos HTB', () => {
    const device = {
      device: 'eth0',
      qdiscs: [{ dev: 'eth0', kind: 'noqueue', handle: '0:', root: true, ingress: false, parent: undefined, defaultClass: undefined, limit: undefined, rate: undefined, burst: undefined, counters: { bytes: 0, packets: 0, drops: 0, overlimits: 0, backlogBytes: 0 } }],
      classes: [],
    };
    expect(directionStats('egress', { rate: 1, ceil: 1, classes: [] } as never, {}, device)).toBeUndefined();
  });
});

describe('carryAcross: what replaced queues and classes had counted stays in the figures', () => {
  const counters = (bytes: number, drops = 0, overlimits = 0) => ({ bytes, packets: Math.ceil(bytes / 100), drops, overlimits, backlogBytes: 0 });
  const qdisc = (handle: string, parent: string | undefined, c: ReturnType<typeof counters>) => ({
    dev: 'eth0',
    kind: parent ? 'tbf' : 'htb',
    handle,
    root: !parent,
    ingress: false,
    parent,
    defaultClass: undefined,
    limit: undefined,
    rate: undefined,
    burst: undefined,
    counters: c,
  });
  const htbClass = (id: string, c: ReturnType<typeof counters>) => ({ id, parent: '7c05:1', prio: 0, quantum: undefined, rate: undefined, ceil: undefined, burst: undefined, cburst: undefined, counters: c });
  const policy = (...names: string[]) => ({ egress: { rate: 1, ceil: 1, classes: names.map((name) => ({ name, rate: 1, ceil: 1 })) } }) as never;
  const previous = { policy: policy('db', 'old'), classIds: { egress: { db: 0x10, old: 0x11 } } };
  const next = { policy: policy('db'), classIds: { egress: { db: 0x10 } } };
  const before = new Map([
    ['eth0', {
      device: 'eth0',
      qdiscs: [qdisc('7c05:', undefined, counters(1000, 30, 7)), qdisc('7c10:', '7c05:10', counters(900, 40, 50)), qdisc('7c11:', '7c05:11', counters(100, 25, 5))],
      classes: [htbClass('7c05:10', counters(900, 10, 2)), htbClass('7c05:11', counters(100, 20, 1))],
    }],
  ]);
  // db's queue replaced (its counts start again), "old" removed with its queue.
  const after = new Map([
    ['eth0', {
      device: 'eth0',
      qdiscs: [qdisc('7c05:', undefined, counters(1005, 30, 7)), qdisc('7c10:', '7c05:10', counters(5))],
      classes: [htbClass('7c05:10', counters(905, 10, 2))],
    }],
  ]);
  const devices = () => 'eth0';

  it('carries the replaced queue into its class, and every lost count into the direction', () => {
    const carried = carryAcross(undefined, previous, next, devices, before, after);
    expect(carried).toEqual({ egress: { drops: 40 + (25 - 20), overlimits: 50 + 5, classes: { db: { bytes: 0, packets: 0, drops: 40, overlimits: 50 } } } });
    const was = directionStats('egress', previous.policy['egress'], previous.classIds.egress, before.get('eth0')!)!;
    const now = directionStats('egress', next.policy['egress'], next.classIds.egress, after.get('eth0')!, carried!.egress)!;
    expect(now.drops).toBe(was.drops);
    expect(now.overlimits).toBe(was.overlimits);
    expect(now.classes[0]).toMatchObject({ name: 'db', drops: 40, overlimits: 52, bytes: 905 });
    expect(was.classes[0]).toMatchObject({ name: 'db', drops: 40, overlimits: 52, bytes: 900 });
  });

  it('adds to what an earlier update carried, and carries nothing when nothing was replaced', () => {
    const earlier = { egress: { drops: 3, overlimits: 4, classes: { db: { bytes: 1, packets: 1, drops: 3, overlimits: 4 } } } };
    const carried = carryAcross(earlier, previous, next, devices, before, after);
    expect(carried?.egress?.classes['db']).toEqual({ bytes: 1, packets: 1, drops: 43, overlimits: 54 });
    expect(carryAcross(undefined, next, next, devices, after, after)).toBeUndefined();
  });

  it('carries a class re-created under another parent whole, its HTB drops leaving the direction once', () => {
    const moved = new Map([['eth0', { ...after.get('eth0')!, classes: [htbClass('7c05:10', counters(3))], qdiscs: [qdisc('7c05:', undefined, counters(1005, 30, 7)), qdisc('7c10:', '7c05:10', counters(3))] }]]);
    const carried = carryAcross(undefined, { ...previous, policy: policy('db'), classIds: { egress: { db: 0x10 } } }, next, devices, new Map([['eth0', { ...before.get('eth0')!, classes: [before.get('eth0')!.classes[0]!], qdiscs: before.get('eth0')!.qdiscs.slice(0, 2) }]]), moved);
    expect(carried?.egress).toEqual({ drops: 40 - 10, overlimits: 50, classes: { db: { bytes: 900, packets: 9, drops: 40, overlimits: 52 } } });
  });

  it('starts again with a direction whose tree was re-created or turned off', () => {
    const recreated = new Map([['eth0', { ...after.get('eth0')!, qdiscs: [qdisc('7c05:', undefined, counters(5)), qdisc('7c10:', '7c05:10', counters(5))] }]]);
    expect(carryAcross(undefined, previous, next, devices, before, recreated)).toBeUndefined();
    expect(carryAcross({ egress: { drops: 1, overlimits: 1, classes: {} } }, previous, { policy: {} as never, classIds: {} }, devices, before, after)).toBeUndefined();
  });
});

describe('shownFrom', () => {
  it('gives an empty filter list to the filter command, not to the class command before it that printed nothing (iproute2 6.1)', () => {
    const commands: ShowCommand[] = [{ show: 'qdisc', dev: 'eth0' }, { show: 'class', dev: 'eth0' }, { show: 'filter', dev: 'eth0' }];
    const shown = shownFrom(commands, { exitCode: 0, stdout: '[{"kind":"noqueue","handle":"0:","root":true,"options":{}}]\n[]\n', stderr: '' });
    expect(shown[1]).toEqual({ classes: [] });
    expect(shown[2]).toEqual({ filters: [] });
  });

  it('takes a class list printed as JSON (a later iproute2) for the class command', () => {
    const commands: ShowCommand[] = [{ show: 'class', dev: 'eth0' }, { show: 'filter', dev: 'eth0' }];
    const shown = shownFrom(commands, { exitCode: 0, stdout: '[]\n[]\n', stderr: '' });
    expect(shown).toEqual([{ classes: [] }, { filters: [] }]);
  });
});
