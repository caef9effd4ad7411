/**
 * Shaping accuracy: one configured rate in both directions, TCP with 1 and 4 streams, receiver
 * goodput and the rate on the wire (the shaper's qdisc byte counter) over the same steady window.
 */
import type { Bed } from '../lib/bed.ts';
import { nowMs, rateSampler, tcpFlow } from '../lib/flow.ts';
import { flatConfig, shape, unshape } from '../lib/plugins.ts';
import { endpoint, type Setup, type SetupId } from '../lib/setups.ts';

export type Direction = 'egress' | 'ingress';
export const DIRECTIONS: readonly Direction[] = ['egress', 'ingress'];

export interface AccuracyCell {
  readonly setup: SetupId;
  readonly rateMbit: number;
  readonly direction: Direction;
  readonly parallel: number;
  /** Per repeat: receiver goodput / configured rate. */
  readonly goodput: number[];
  /** Per repeat: shaper qdisc bytes on the wire / configured rate. */
  readonly wire: number[];
  /** Per repeat: TCP retransmissions counted by the sender(s). */
  readonly retransmits: number[];
  readonly errors: string[];
}

/** What the path carries with no shaping at all: the headroom above the 1 Gbit/s cells. */
export interface Capacity {
  readonly path: 'macvlan' | 'veth';
  readonly direction: Direction;
  readonly parallel: number;
  readonly goodputMbit: number;
}

export interface AccuracyResult {
  readonly cells: AccuracyCell[];
  readonly capacity: Capacity[];
}

export interface AccuracyOptions {
  readonly ratesMbit: readonly number[];
  readonly parallels: readonly number[];
  readonly repeats: number;
  readonly seconds: number;
}

export async function accuracy(bed: Bed, setups: readonly Setup[], options: AccuracyOptions, log: (line: string) => void): Promise<AccuracyResult> {
  const capacity = await unshapedCapacity(setups, options);
  log(`accuracy: unshaped capacity ${capacity.map((c) => `${c.path} ${c.direction} P${c.parallel} ${c.goodputMbit.toFixed(0)}`).join(', ')} Mbit/s`);
  const cells: AccuracyCell[] = [];
  for (const setup of setups) {
    for (const rateMbit of options.ratesMbit) {
      const rateBits = rateMbit * 1e6;
      const config = flatConfig(setup.plugin, setup.pod, { rateBits, mode: 'static' });
      const mine = DIRECTIONS.flatMap((direction) =>
        options.parallels.map((parallel) => {
          const cell: AccuracyCell = { setup: setup.id, rateMbit, direction, parallel, goodput: [], wire: [], retransmits: [], errors: [] };
          cells.push(cell);
          return cell;
        }),
      );
      const started = nowMs();
      const shaped = await shape(bed, setup.plugin, setup.pod, config);
      try {
        for (let repeat = 0; repeat < options.repeats; repeat++) {
          for (const cell of mine) {
            const [from, to] = cell.direction === 'egress' ? [setup.pod, setup.peers[0]] : [setup.peers[0], setup.pod];
            try {
              const { flow, extra: wire } = await tcpFlow(
                { from: endpoint(from), to: endpoint(to), seconds: options.seconds, parallel: cell.parallel },
                rateSampler(shaped[cell.direction], false, options.seconds),
              );
              cell.goodput.push(flow.goodputBits / rateBits);
              cell.wire.push(wire.get('root')! / rateBits);
              cell.retransmits.push(flow.retransmits);
            } catch (error) {
              cell.errors.push(String(error).slice(0, 300));
            }
          }
        }
      } finally {
        await unshape(bed, setup.plugin, setup.pod, config);
      }
      log(`accuracy ${setup.id} ${rateMbit} Mbit/s: ${mine.map(summary).join(' | ')} (${((nowMs() - started) / 1000).toFixed(0)} s)`);
    }
  }
  return { cells, capacity };
}

async function unshapedCapacity(setups: readonly Setup[], options: AccuracyOptions): Promise<Capacity[]> {
  const capacity: Capacity[] = [];
  const paths = [
    { path: 'macvlan' as const, setup: setups.find((s) => s.pod.network === 'macvlan') },
    { path: 'veth' as const, setup: setups.find((s) => s.pod.network === 'ptp') },
  ];
  for (const { path, setup } of paths) {
    if (!setup) continue;
    for (const direction of DIRECTIONS) {
      for (const parallel of options.parallels) {
        const [from, to] = direction === 'egress' ? [setup.pod, setup.peers[0]] : [setup.peers[0], setup.pod];
        try {
          const { flow } = await tcpFlow({ from: endpoint(from), to: endpoint(to), seconds: options.seconds, parallel }, async () => undefined);
          capacity.push({ path, direction, parallel, goodputMbit: flow.goodputBits / 1e6 });
        } catch {
          capacity.push({ path, direction, parallel, goodputMbit: Number.NaN });
        }
      }
    }
  }
  return capacity;
}

function summary(cell: AccuracyCell): string {
  const pct = (values: number[]) => values.map((v) => (v * 100).toFixed(1)).join('/');
  return `${cell.direction} P${cell.parallel} goodput ${pct(cell.goodput)} wire ${pct(cell.wire)} retr ${cell.retransmits.join('/')}${cell.errors.length ? ` ERR ${cell.errors.length}` : ''}`;
}
