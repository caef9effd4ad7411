/** The operator's views, pure: tables (numbers to the right), one row order, the policy diff, top's rows, bars and sorting. */
import { describe, expect, it } from 'vitest';
import type { AttachmentStats, ClassStats, DirectionStats } from '../../src/attachment/stats.ts';
import type { PolicyJson } from '../../src/config/policy.ts';
import { byAttachment, right, table } from '../../src/operator/format.ts';
import { policyChanges } from '../../src/operator/policy-diff.ts';
import { currentRates, rateKey } from '../../src/operator/rates.ts';
import { rateBar, renderTop, sortRows, topRows } from '../../src/operator/top-view.ts';

describe('table', () => {
  it('lines numbers up on their last digit and text on its first', () => {
    expect(table(['NAME', right('BYTES')], [['a', '5'], ['longer', '12345']])).toBe('NAME    BYTES\na           5\nlonger  12345\n');
  });
});

describe('byAttachment', () => {
  it('orders by pod, those without one last, then container and interface', () => {
    const keys = [
      { containerId: 'c', ifname: 'eth0' },
      { containerId: 'b', ifname: 'net1', pod: { namespace: 'x', name: 'p' } },
      { containerId: 'b', ifname: 'eth0', pod: { namespace: 'x', name: 'p' } },
      { containerId: 'a', ifname: 'eth0', pod: { namespace: 'y', name: 'a' } },
      { containerId: 'a', ifname: 'eth0' },
    ];
    expect([...keys].sort(byAttachment).map((k) => `${k.pod?.name ?? '-'}/${k.containerId}/${k.ifname}`)).toEqual(['p/b/eth0', 'p/b/net1', 'a/a/eth0', '-/a/eth0', '-/c/eth0']);
  });
});

const direction = (rate: number, ceil: number, classes: Array<{ name: string; rate: number; ceil?: number }>) => ({
  rate,
  ceil,
  classes: classes.map((c) => ({ name: c.name, rate: c.rate, ceil: c.ceil ?? c.rate, priority: 0, unshaped: false })),
  defaultClass: classes.at(-1)!.name,
  rules: [],
});

describe('policyChanges', () => {
  it('names each changed figure, class added or removed, and a direction turned off', () => {
    const before: PolicyJson = { egress: direction(40e6, 40e6, [{ name: 'db', rate: 20e6 }, { name: 'old', rate: 5e6 }, { name: 'default', rate: 15e6 }]), ingress: direction(10e6, 10e6, [{ name: 'default', rate: 10e6 }]) };
    const after: PolicyJson = { egress: direction(40e6, 50e6, [{ name: 'db', rate: 10e6 }, { name: 'web', rate: 5e6, ceil: 20e6 }, { name: 'default', rate: 25e6 }]) };
    expect(policyChanges(before, after)).toEqual([
      'egress: ceil 40 Mbit/s -> 50 Mbit/s',
      'egress class db: rate 20 Mbit/s -> 10 Mbit/s, ceil 20 Mbit/s -> 10 Mbit/s',
      'egress class web: added (rate 5 Mbit/s, ceil 20 Mbit/s)',
      'egress class default: rate 15 Mbit/s -> 25 Mbit/s, ceil 15 Mbit/s -> 25 Mbit/s',
      'egress class old: removed (was rate 5 Mbit/s, ceil 5 Mbit/s)',
      'ingress: shaping removed (was rate 10 Mbit/s, ceil 10 Mbit/s, 1 class)',
    ]);
    expect(policyChanges(after, after)).toEqual([]);
    expect(policyChanges({}, { ingress: before.ingress! })).toEqual(['ingress: shaping added (rate 10 Mbit/s, ceil 10 Mbit/s, 1 class)']);
  });
});

function cls(name: string, rate: number, ceil: number, bytes: number, drops = 0, backlogBytes = 0): ClassStats {
  return { name, classId: `7c05:${name.length}`, rate, ceil, bytes, packets: 0, drops, overlimits: 0, backlogBytes };
}
function dir(name: DirectionStats['direction'], classes: ClassStats[]): DirectionStats {
  const sum = (f: 'bytes' | 'drops' | 'backlogBytes') => classes.reduce((t, c) => t + c[f], 0);
  return { direction: name, device: 'eth0', rate: 50e6, ceil: 50e6, bytes: sum('bytes'), packets: 0, drops: sum('drops'), overlimits: 0, backlogBytes: sum('backlogBytes'), classes };
}
function attachment(containerId: string, pod: string | undefined, classes: ClassStats[]): AttachmentStats {
  return { containerId, ifname: 'eth0', netns: '/x', network: 'n', ...(pod ? { pod: { namespace: 'ns', name: pod } } : {}), directions: [dir('egress', classes)] };
}

describe('rates and top rows', () => {
  const before = [attachment('bbb', 'web', [cls('db', 20e6, 20e6, 1_000_000, 5), cls('default', 30e6, 30e6, 0)]), attachment('aaa', undefined, [cls('default', 10e6, 10e6, 0)])];
  const after = [attachment('bbb', 'web', [cls('db', 20e6, 20e6, 3_500_000, 25, 3028), cls('default', 30e6, 30e6, 250_000)]), attachment('aaa', undefined, [cls('default', 10e6, 10e6, 1_250_000)])];

  it('turns two readings into bit/s per class and direction', () => {
    const rates = currentRates(before, after, 1);
    expect(rates.get(rateKey(after[0]!, 'egress', 'db'))).toBe(20e6);
    expect(rates.get(rateKey(after[0]!, 'egress', ''))).toBe(22e6);
    // A counter that went down (re-created) has no rate rather than a negative one.
    expect(currentRates(after, before, 1).get(rateKey(after[0]!, 'egress', 'db'))).toBeUndefined();
  });

  it('lists a total and the classes of each direction, in the order of every view, and sorts by each key', () => {
    const rows = topRows(before, after, 1);
    expect(rows.map((r) => `${r.attachment.containerId}:${r.cls?.name ?? 'total'}`)).toEqual(['bbb:total', 'bbb:db', 'bbb:default', 'aaa:total', 'aaa:default']);
    const db = rows[1]!;
    expect(db).toMatchObject({ now: 20e6, dropsNow: 20 });
    const names = (key: Parameters<typeof sortRows>[1]) => sortRows(rows, key).map((r) => `${r.attachment.containerId}:${r.cls?.name ?? 'total'}`);
    expect(names('rate').slice(0, 3)).toEqual(['bbb:total', 'bbb:db', 'aaa:total']);
    // db and aaa's default class use all of their ceiling; aaa's total a fifth of its 50 Mbit/s.
    expect(names('use').slice(0, 2)).toEqual(['bbb:db', 'aaa:default']);
    expect(names('drops')[0]).toBe('bbb:total');
    expect(names('backlog').slice(0, 2)).toEqual(['bbb:total', 'bbb:db']);
    expect(names('name')).toEqual(rows.map((r) => `${r.attachment.containerId}:${r.cls?.name ?? 'total'}`));
  });

  it('draws the rate now against the ceiling, the guarantee marked', () => {
    expect(rateBar(5e6, 10e6, 20e6, 10)).toBe('[===.|.....]');
    expect(rateBar(15e6, 10e6, 20e6, 10)).toBe('[====|===..]');
    expect(rateBar(20e6, 20e6, 20e6, 4)).toBe('[====]');
    expect(rateBar(undefined, 5, 10, 4)).toBe('[.|..]');
  });

  it('fits the screen: header, titles, rows cut to the width, and what did not fit counted', () => {
    const rows = topRows(before, after, 1);
    const lines = renderTop(rows, { sort: 'rate', intervalSeconds: 1, at: new Date('2026-12-03T10:00:00Z') }, { columns: 200, rows: 7 });
    expect(lines).toHaveLength(7);
    expect(lines[0]).toBe('tcqos top  10:00:00  2 attachments, refresh 1 s, sort: rate');
    expect(lines[1]).toMatch(/\[r\] rate/);
    expect(lines[3]).toMatch(/^ATTACHMENT\s+IFACE\s+DIR\s+CLASS\s+NOW\s+NOW \/ CEIL/);
    expect(lines[4]).toMatch(/^bbb ns\/web\s+eth0\s+egress\s+\(total\)\s+22 Mbit\/s\s+\[=========\.+\]\s+44%/);
    expect(lines[6]).toBe('... 3 more rows (a taller terminal shows them)');
    expect(renderTop(rows, { sort: 'name', intervalSeconds: 1, at: new Date() }, { columns: 30, rows: 50 }).every((line) => line.length <= 30)).toBe(true);
  });
});
