/**
 * The shared uplink (`uplink.enforce`): whether per-pod guarantees hold when pods compete, and what
 * an enforced uplink still carries.
 *
 * - Guarantees: three macvlan pods guaranteed 50/30/10 of a 100 Mbit/s uplink (ceil 100), flooding
 *   at once with 1/2/8 TCP streams, both directions; with the uplink's tree, and without it (each
 *   pod capped inside its netns as usual, the 100 Mbit/s link emulated by a plain tbf on each end,
 *   which is what the pods compete for then). Wire Mbit/s per pod, from its TCP goodput.
 * - Ceiling: one pod alone on an enforced uplink of 1 and 10 Gbit/s (4 streams), against the same
 *   pod with no tree on the uplink: HTB on the uplink puts it behind one qdisc lock (an `mq`
 *   uplink's queues are replaced) and its ingress through an ifb.
 */
import { TCP_GOODPUT_RATIO, goodputMbit, type Flow } from '../../test/helpers/iperf.ts';
import { inNetns } from '../../test/helpers/run.ts';
import { UPLINK, UplinkBed, type UplinkPod } from '../../test/helpers/uplink-bed.ts';
import { median } from '../lib/stats.ts';

type Direction = 'egress' | 'ingress';
const DIRECTIONS: readonly Direction[] = ['egress', 'ingress'];
const SHARES = [50, 30, 10];
const STREAMS = [1, 2, 8];
const CAPACITY_MBIT = 100;

export interface GuaranteeRow {
  readonly enforced: boolean;
  readonly direction: Direction;
  /** Per pod (50/30/10 guaranteed), wire Mbit/s of each repeat. */
  readonly wire: number[][];
}

export interface CeilingRow {
  readonly capacityMbit: number;
  readonly direction: Direction;
  /** Wire Mbit/s of the pod alone: through the enforced tree, and with no tree on the uplink. */
  readonly enforced: number[];
  readonly plain: number[];
}

export interface UplinkResult {
  readonly guarantees: GuaranteeRow[];
  readonly ceilings: CeilingRow[];
}

const wireOf = (goodput: number) => goodput / TCP_GOODPUT_RATIO;

/** The flows' goodputs, all at once (3 s measured after 2 s of slow start). */
async function together(flows: readonly Flow[]): Promise<number[]> {
  return Promise.all(flows.map((flow) => goodputMbit({ ...flow, seconds: 5, omitSeconds: 2 })));
}

async function must(ran: Promise<{ exitCode: number; stdout: string }>, what: string): Promise<void> {
  const result = await ran;
  if (result.exitCode !== 0) throw new Error(`${what}: ${result.stdout}`);
}

/** The link the pods compete for without the uplink's tree: a tbf at 100 Mbit/s on each end of it. */
async function emulateLink(bed: UplinkBed, on: boolean): Promise<void> {
  for (const [netns, dev] of [[bed.node, UPLINK], [bed.outside, 'out0']] as const) {
    if (on) await inNetns(netns, 'tc', ['qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'tbf', 'rate', `${CAPACITY_MBIT}mbit`, 'burst', '32kb', 'latency', '20ms']);
    else await inNetns(netns, 'tc', ['qdisc', 'del', 'dev', dev, 'root']);
  }
}

async function guarantees(bed: UplinkBed, repeats: number, log: (line: string) => void): Promise<GuaranteeRow[]> {
  const rows: GuaranteeRow[] = [];
  for (const enforced of [true, false]) {
    const pods: UplinkPod[] = [];
    const config = (share: number) => {
      const direction = { rate: `${share}mbit`, ceil: `${CAPACITY_MBIT}mbit` };
      return bed.conflist(CAPACITY_MBIT, { egress: direction, ingress: direction }, { enforce: enforced, reserve: '5mbit' });
    };
    for (const [i, share] of SHARES.entries()) {
      const pod = await bed.pod(`${enforced ? 'e' : 'p'}${i}`);
      await must(bed.call('ADD', pod, config(share)), `ADD ${pod.netns}`);
      pods.push(pod);
    }
    if (!enforced) await emulateLink(bed, true);
    try {
      for (const direction of DIRECTIONS) {
        const wire: number[][] = SHARES.map(() => []);
        for (let repeat = 0; repeat < repeats; repeat++) {
          const got = await together(pods.map((pod, i) => bed.flow(pod, direction, 5901 + i, STREAMS[i]!)));
          got.forEach((goodput, i) => wire[i]!.push(wireOf(goodput)));
          log(`uplink ${enforced ? 'enforced' : 'not enforced'} ${direction}: ${got.map((goodput, i) => `${SHARES[i]} guaranteed ${wireOf(goodput).toFixed(1)}`).join(', ')} Mbit/s on the wire`);
        }
        rows.push({ enforced, direction, wire });
      }
    } finally {
      if (!enforced) await emulateLink(bed, false);
      for (const [i, pod] of pods.entries()) await bed.call('DEL', pod, config(SHARES[i]!));
    }
  }
  return rows;
}

async function ceilings(bed: UplinkBed, repeats: number, log: (line: string) => void): Promise<CeilingRow[]> {
  const rows: CeilingRow[] = [];
  for (const capacityMbit of [1_000, 10_000]) {
    const pod = await bed.pod(`c${capacityMbit}`);
    const direction = { rate: `${capacityMbit / 10}mbit`, ceil: `${capacityMbit}mbit` };
    const config = (enforce: boolean) => bed.conflist(capacityMbit, { egress: direction, ingress: direction }, { enforce });
    for (const way of DIRECTIONS) {
      const measured = { enforced: [] as number[], plain: [] as number[] };
      for (const enforce of [true, false]) {
        await must(bed.call('ADD', pod, config(enforce)), `ADD ${pod.netns}`);
        for (let repeat = 0; repeat < repeats; repeat++) {
          const [goodput] = await together([bed.flow(pod, way, 5911, 4)]);
          measured[enforce ? 'enforced' : 'plain'].push(wireOf(goodput!));
        }
        await bed.call('DEL', pod, config(enforce));
      }
      log(`uplink ceiling ${capacityMbit} Mbit/s ${way}: enforced ${median(measured.enforced).toFixed(0)}, no tree ${median(measured.plain).toFixed(0)} Mbit/s on the wire`);
      rows.push({ capacityMbit, direction: way, ...measured });
    }
  }
  return rows;
}

export async function uplink(repeats: number, log: (line: string) => void): Promise<UplinkResult> {
  const bed = new UplinkBed('tqbup', 150);
  await bed.setUp();
  try {
    return { guarantees: await guarantees(bed, repeats, log), ceilings: await ceilings(bed, repeats, log) };
  } finally {
    await bed.tearDown();
  }
}

function markdownTable(header: readonly string[], rows: readonly string[][]): string {
  return [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n');
}

export function uplinkReport(result: UplinkResult, verdicts: string[]): string {
  const guaranteeRows = result.guarantees.map((row) => [
    row.enforced ? 'enforced' : 'not enforced',
    row.direction,
    ...row.wire.map((values, i) => `${median(values).toFixed(1)} (${((median(values) / SHARES[i]!) * 100).toFixed(0)}%)`),
    row.wire.reduce((sum, values) => sum + median(values), 0).toFixed(1),
  ]);
  const enforced = result.guarantees.filter((row) => row.enforced);
  const kept = enforced.every((row) => row.wire.every((values, i) => Math.min(...values) >= SHARES[i]! * 0.98));
  verdicts.push(`${kept ? '✓' : '✗'} uplink guarantees (50/30/10 of 100 Mbit/s, 1/2/8 streams): every pod ≥ 0.98 of its guarantee in every enforced run, both directions`);
  const ceilingRows = result.ceilings.map((row) => [
    `${row.capacityMbit / 1000} Gbit/s`,
    row.direction,
    median(row.enforced).toFixed(0),
    median(row.plain).toFixed(0),
    `${((median(row.enforced) / row.capacityMbit) * 100).toFixed(1)}%`,
  ]);
  return [
    '## The shared uplink (`uplink.enforce`)',
    '',
    'Three macvlan pods guaranteed 50/30/10 of a 100 Mbit/s uplink (ceil 100) flooding at once with 1/2/8 TCP streams; wire Mbit/s per pod (median of the repeats, % of its guarantee). Not enforced: each pod capped in its netns, the link a tbf at 100 Mbit/s on both ends.',
    '',
    markdownTable(['uplink', 'direction', 'pod 50 (1 stream)', 'pod 30 (2)', 'pod 10 (8)', 'all'], guaranteeRows),
    '',
    'One pod alone (4 streams) on a veth uplink: through the enforced tree (HTB at the capacity on the uplink, its ingress through an ifb) and with no tree; wire Mbit/s.',
    '',
    markdownTable(['capacity', 'direction', 'enforced', 'no tree', 'enforced / capacity'], ceilingRows),
  ].join('\n');
}
