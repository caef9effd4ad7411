/** Pure parts of live operations: stable class ids, the update lines a diff becomes, the registry's files. */
import { mkdtempSync, readdirSync, rmSync, writeFileSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { uplinkUsage } from '../../src/attachment/admission.ts';
import { derivePolicy } from '../../src/config/derive.ts';
import { policyToJson } from '../../src/config/policy-json.ts';
import { assignClassIds } from '../../src/plan/class-ids.ts';
import { diffAttachment } from '../../src/plan/diff.ts';
import { planAttachment, type ShapingTree } from '../../src/plan/tree.ts';
import { updateLines } from '../../src/plan/update.ts';
import type { AttachmentRecord } from '../../src/state/record.ts';
import { Registry } from '../../src/state/registry.ts';
import { classId, leafHandle } from '../../src/tc/handles.ts';
import type { ObservedAttachment, ObservedTree } from '../../src/tc/types.ts';

const NO_COUNTERS = { bytes: 0, packets: 0, drops: 0, overlimits: 0, backlogBytes: 0 };

/** What the kernel would show after installing `tree` exactly. */
function installed(tree: ShapingTree): ObservedTree {
  return {
    qdisc: { dev: tree.dev, kind: 'htb', handle: '7c05:', root: true, ingress: false, parent: undefined, defaultClass: tree.defaultMinor.toString(16), limit: undefined, rate: undefined, burst: undefined, counters: NO_COUNTERS },
    leaves: tree.leaves.map((leaf) => ({
      dev: tree.dev, kind: 'tbf', handle: leafHandle(leaf.classMinor), root: false, ingress: false, parent: classId(leaf.classMinor),
      defaultClass: undefined, limit: leaf.limitBytes, rate: leaf.rateBytes * 8, burst: leaf.burstBytes, counters: NO_COUNTERS,
    })),
    classes: tree.classes.map((c) => ({
      id: classId(c.minor), parent: c.parentMinor === undefined ? undefined : classId(c.parentMinor), prio: c.prio, quantum: c.quantumBytes,
      rate: c.rateBytes * 8, ceil: c.ceilBytes * 8, burst: c.burstBytes, cburst: c.cburstBytes, counters: undefined,
    })),
    filters: tree.filters.map((f) => ({ ...f, kind: 'u32', flowid: classId(f.flowidMinor), redirectTo: undefined })),
  };
}

async function egressPlan(egress: object, previous?: Record<string, number>) {
  const { policy } = await derivePolicy({ config: { cniVersion: '1.1.0', name: 'n', type: 'tcqos', egress } });
  return planAttachment(policy, 'eth0', 1500, previous ? { egress: previous } : undefined);
}

function observedEgress(tree: ShapingTree): ObservedAttachment {
  const link = { name: 'eth0', ifindex: 2, linkIndex: undefined, address: undefined, mtu: 1500, txqlen: 1000, up: true, kind: undefined, rootQdiscKind: 'htb' };
  const none: ObservedTree = { qdisc: undefined, leaves: [], classes: [], filters: [] };
  return { iface: link, ifb: undefined, onInterface: installed(tree), ingressQdisc: undefined, redirects: [], onIfb: none };
}

describe('class ids', () => {
  it('keep their minors across edits; a new class never takes the minor of one removed in the same edit', () => {
    const first = assignClassIds(['db', 'web', 'default']);
    expect(first).toEqual({ db: 0x10, web: 0x11, default: 0x12 });
    expect(assignClassIds(['web', 'cache', 'default'], first)).toEqual({ web: 0x11, default: 0x12, cache: 0x13 });
  });
});

describe('update lines', () => {
  it('turning a direction on adds its whole tree on the new ifb, before redirecting to it', async () => {
    const before = await egressPlan({ rate: '40mbit' });
    const { policy } = await derivePolicy({ config: { cniVersion: '1.1.0', name: 'n', type: 'tcqos', egress: { rate: '40mbit' }, ingress: { rate: '20mbit' } } });
    const after = planAttachment(policy, 'eth0', 1500, before.classIds);
    const lines = updateLines(after, diffAttachment(after, observedEgress(before.egress!)));
    const tree = lines.findIndex((line) => line.startsWith(`qdisc add dev ${after.ifb} root handle 7c05:`));
    const redirect = lines.findIndex((line) => line.includes('mirred egress redirect'));
    expect(tree).toBeGreaterThanOrEqual(0);
    expect(lines.some((line) => line.startsWith(`class add dev ${after.ifb} parent 7c05:1 classid 7c05:10`))).toBe(true);
    expect(redirect).toBeGreaterThan(tree);
    expect(lines.some((line) => line.includes('dev eth0 root'))).toBe(false);
  });

  it('retune classes in place and replace their leaf queues; nothing touches the root qdisc', async () => {
    const before = await egressPlan({ rate: '40mbit', classes: [{ name: 'db', rate: '30mbit', peers: ['198.18.0.3/32'] }] });
    const after = await egressPlan({ rate: '20mbit', classes: [{ name: 'db', rate: '10mbit', peers: ['198.18.0.3/32'] }] }, before.classIds.egress as Record<string, number>);
    const lines = updateLines(after, diffAttachment(after, observedEgress(before.egress!)));
    // the total and db change; the implicit default keeps its 10 Mbit/s (40-30 before, 20-10 after)
    expect(lines.filter((line) => line.startsWith('class change dev eth0')).map((line) => /classid (\S+)/.exec(line)?.[1])).toEqual(['7c05:1', '7c05:10']);
    // db's bucket shrinks with its rate: its queue is replaced, not changed (a queued GSO packet
    // larger than the new bucket would never leave)
    expect(lines).toContain('qdisc del dev eth0 parent 7c05:10');
    expect(lines.some((line) => line.startsWith('qdisc add dev eth0 parent 7c05:10 handle 7c10: tbf rate 10000000bit'))).toBe(true);
    expect(lines.some((line) => / root /.test(line))).toBe(false);
    expect(lines.some((line) => line.startsWith('filter'))).toBe(false);
  });

  it('add and remove classes around unchanged ones, rewriting only the filter preferences that changed, in an order tc accepts', async () => {
    const before = await egressPlan({ rate: '50mbit', classes: [{ name: 'db', rate: '20mbit', peers: ['198.18.0.3/32'] }, { name: 'old', rate: '10mbit', peers: ['198.18.0.9/32'] }] });
    const after = await egressPlan(
      { rate: '50mbit', default: 'rest', classes: [{ name: 'db', rate: '20mbit', peers: ['198.18.0.3/32'] }, { name: 'rest', rate: '30mbit' }] },
      before.classIds.egress as Record<string, number>,
    );
    const lines = updateLines(after, diffAttachment(after, observedEgress(before.egress!)));
    const at = (prefix: string) => lines.findIndex((line) => line.startsWith(prefix));
    // db (7c05:10) keeps its id and is untouched; "old" (7c05:11) goes; "rest" is new (7c05:13: 7c05:12 was the old default's)
    expect(lines.some((line) => line.includes('classid 7c05:10 '))).toBe(false);
    expect(at('class add dev eth0 parent 7c05:1 classid 7c05:13')).toBeGreaterThanOrEqual(0);
    expect(at('filter del dev eth0 parent 7c05: pref 12')).toBeGreaterThan(at('class add'));
    expect(at('filter del dev eth0 parent 7c05: pref 31748')).toBeGreaterThan(at('class add'));
    expect(lines).toContain('filter add dev eth0 parent 7c05: protocol all pref 31748 u32 match u32 0x00000000 0x00000000 at 0 flowid 7c05:13');
    // pref 10 (db's rule) is the same before and after: left alone
    expect(lines.some((line) => / pref 10 /.test(line))).toBe(false);
    // classes go last, once no filter points at them
    expect(at('class del dev eth0 classid 7c05:11')).toBe(lines.length - 2);
    expect(at('class del dev eth0 classid 7c05:12')).toBe(lines.length - 1);
  });

  it('change a leaf queue in place when its bucket grows: raising a rate drops nothing', async () => {
    const before = await egressPlan({ rate: '20mbit', classes: [{ name: 'db', rate: '10mbit', peers: ['198.18.0.3/32'] }] });
    const after = await egressPlan({ rate: '40mbit', classes: [{ name: 'db', rate: '30mbit', peers: ['198.18.0.3/32'] }] }, before.classIds.egress as Record<string, number>);
    const lines = updateLines(after, diffAttachment(after, observedEgress(before.egress!)));
    expect(lines.some((line) => line.startsWith('qdisc change dev eth0 parent 7c05:10 handle 7c10: tbf rate 30000000bit'))).toBe(true);
    expect(lines.some((line) => line.startsWith('qdisc del'))).toBe(false);
  });

  it('are empty when the kernel already holds the plan', async () => {
    const plan = await egressPlan({ rate: '40mbit', classes: [{ name: 'db', rate: '30mbit', peers: ['198.18.0.3/32'] }] });
    expect(updateLines(plan, diffAttachment(plan, observedEgress(plan.egress!)))).toEqual([]);
  });
});

describe('the registry', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function record(containerId: string, netns: string, egressRate: string, uplink?: { name: string; capacity: number }): Promise<AttachmentRecord> {
    const { policy } = await derivePolicy({ config: { cniVersion: '1.1.0', name: 'n', type: 'tcqos', egress: { rate: egressRate } } });
    return {
      version: 1, containerId, ifname: 'eth0', netns, network: 'n', config: {}, policy: policyToJson(policy), sources: { egress: 'config' },
      classIds: { egress: { default: 0x10 } }, ...(uplink ? { uplink } : {}), createdAt: 'then', updatedAt: 'then',
    };
  }

  it('lists records, names the files that are not records, and drops those and the records of vanished pods', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tcqos-registry-'));
    const registry = new Registry(dir);
    registry.write(await record('alive', '/', '10mbit'));
    registry.write(await record('gone', '/nonexistent/netns', '10mbit'));
    writeFileSync(join(dir, 'attachments', 'eth0@torn.json'), '{"version": 1, "contai');
    writeFileSync(join(dir, 'attachments', 'eth0@other.json'), JSON.stringify({ ...(await record('elsewhere', '/', '1mbit')) }));
    // a killed writer's temp file: older than any live write
    writeFileSync(join(dir, 'attachments', 'eth0@alive.json.999999999.tmp'), 'half');
    const longAgo = new Date(Date.now() - 120_000);
    utimesSync(join(dir, 'attachments', 'eth0@alive.json.999999999.tmp'), longAgo, longAgo);
    const { records, problems } = registry.list();
    expect(records.map((r) => r.containerId).sort()).toEqual(['alive', 'gone']);
    expect(problems).toEqual([
      expect.stringMatching(/eth0@other\.json: its content names eth0@elsewhere\.json$/),
      expect.stringMatching(/eth0@torn\.json: not valid JSON/),
    ]);
    expect(registry.dropGone().map((r) => r.containerId)).toEqual(['gone']);
    expect(registry.dropUnreadable()).toHaveLength(2);
    expect(registry.dropAbandonedTemps()).toBe(1);
    expect(readdirSync(join(dir, 'attachments'))).toEqual(['eth0@alive.json']);
  });

  it('adds up each uplink\'s guaranteed rates for list', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tcqos-registry-'));
    const up = { name: 'up0', capacity: 100e6, reserve: 5e6, enforce: true };
    const usage = uplinkUsage([await record('a', '/', '15mbit', up), await record('b', '/', '30mbit', up), await record('c', '/', '5mbit')]);
    expect(usage).toEqual([{ name: 'up0', capacity: 100e6, reserve: 5e6, enforced: true, egress: 45e6, ingress: 0, attachments: 2 }]);
  });
});
