/**
 * The counter reader on captured `tc -s -j -force -batch` output (iproute2 6.1: qdiscs as JSON,
 * HTB classes as text), and the figures stats makes of it: each counted once, from the object the
 * documentation names.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { directionStats } from '../../src/attachment/stats.ts';
import { countersFromBatch, countersScript } from '../../src/netns/counters.ts';

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
    expect(() => countersFromBatch(['eth0'], { exitCode: 0, stdout: 'class htb 7c05:1 root rate 1Mbit\n', stderr: '' })).toThrow(/no qdisc list for eth0/);
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
    const device = { device: 'eth0', qdiscs: [{ kind: 'noqueue', handle: '0:', root: true, parent: undefined, counters: { bytes: 0, packets: 0, drops: 0, overlimits: 0, backlogBytes: 0 } }], classes: [] };
    expect(directionStats('egress', { rate: 1, ceil: 1, classes: [] } as never, {}, device)).toBeUndefined();
  });
});
