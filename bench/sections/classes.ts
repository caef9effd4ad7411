/**
 * Classes: the seed's tree (50 total; 40 to one peer, 10 default) with both peers sending at once,
 * and ceil borrowing (a class of rate 10 ceil 50 sending alone). tcqos only: the reference plugin
 * has one TBF per direction and no classes.
 */
import type { Bed } from '../lib/bed.ts';
import { rateSampler, tcpFlow, type FlowResult } from '../lib/flow.ts';
import { shape, treeConfig, unshape } from '../lib/plugins.ts';
import { endpoint, type Setup, type SetupId } from '../lib/setups.ts';
import { DIRECTIONS, type Direction } from './accuracy.ts';

export type Scenario = 'contention' | 'borrowing';

export interface ClassCell {
  readonly setup: SetupId;
  readonly scenario: Scenario;
  readonly direction: Direction;
  /** "db" (the peer-matched class) or "rest" (the default class). */
  readonly className: 'db' | 'rest';
  /** What the class should get, bit/s on the wire. */
  readonly expectedBits: number;
  readonly goodput: number[];
  readonly wire: number[];
  readonly errors: string[];
}

interface Tree {
  readonly direction: object;
  /** Class rate/ceil as tc prints them, to find each class's counters. */
  readonly printed: Record<'db' | 'rest', string>;
  readonly expectedBits: Record<'db' | 'rest', number>;
  readonly active: ReadonlyArray<'db' | 'rest'>;
}

function trees(dbPeer: string): Record<Scenario, Tree> {
  return {
    contention: {
      direction: {
        rate: '50mbit',
        default: 'rest',
        classes: [
          { name: 'db', rate: '40mbit', peers: [`${dbPeer}/32`] },
          { name: 'rest', rate: '10mbit' },
        ],
      },
      printed: { db: '40Mbit/40Mbit', rest: '10Mbit/10Mbit' },
      expectedBits: { db: 40e6, rest: 10e6 },
      active: ['db', 'rest'],
    },
    borrowing: {
      direction: {
        rate: '50mbit',
        default: 'rest',
        classes: [
          { name: 'db', rate: '10mbit', ceil: '50mbit', peers: [`${dbPeer}/32`] },
          { name: 'rest', rate: '40mbit' },
        ],
      },
      printed: { db: '10Mbit/50Mbit', rest: '40Mbit/40Mbit' },
      expectedBits: { db: 50e6, rest: 40e6 },
      active: ['db'],
    },
  };
}

export async function classes(
  bed: Bed,
  setups: readonly Setup[],
  options: { repeats: number; seconds: number },
  log: (line: string) => void,
): Promise<ClassCell[]> {
  const cells: ClassCell[] = [];
  for (const setup of setups.filter((s) => s.plugin === 'tcqos')) {
    const [dbPeer, otherPeer] = setup.peers;
    for (const [scenario, tree] of Object.entries(trees(dbPeer.address)) as Array<[Scenario, Tree]>) {
      const config = treeConfig(setup.pod, tree.direction);
      const shaped = await shape(bed, 'tcqos', setup.pod, config);
      try {
        for (const direction of DIRECTIONS) {
          const mine = tree.active.map((className) => {
            const cell: ClassCell = { setup: setup.id, scenario, direction, className, expectedBits: tree.expectedBits[className], goodput: [], wire: [], errors: [] };
            cells.push(cell);
            return cell;
          });
          for (let repeat = 0; repeat < options.repeats; repeat++) {
            try {
              const flows = mine.map((cell, index) => {
                const peer = cell.className === 'db' ? dbPeer : otherPeer;
                const [from, to] = direction === 'egress' ? [setup.pod, peer] : [peer, setup.pod];
                const spec = { from: endpoint(from), to: endpoint(to), seconds: options.seconds, parallel: 1 };
                // one of the flows samples the class counters for all of them
                return tcpFlow(spec, index === 0 ? rateSampler(shaped[direction], true, options.seconds) : async () => undefined);
              });
              const results = await Promise.all(flows);
              const wire = results[0]!.extra!;
              mine.forEach((cell, index) => {
                cell.goodput.push((results[index]!.flow as FlowResult).goodputBits / cell.expectedBits);
                cell.wire.push((wire.get(tree.printed[cell.className]) ?? Number.NaN) / cell.expectedBits);
              });
            } catch (error) {
              for (const cell of mine) cell.errors.push(String(error).slice(0, 300));
            }
          }
          log(`classes ${setup.id} ${scenario} ${direction}: ${mine.map((c) => `${c.className} goodput ${c.goodput.map((v) => (v * 100).toFixed(1)).join('/')} wire ${c.wire.map((v) => (v * 100).toFixed(1)).join('/')}`).join(' | ')}`);
        }
      } finally {
        await unshape(bed, 'tcqos', setup.pod, config);
      }
    }
  }
  return cells;
}
