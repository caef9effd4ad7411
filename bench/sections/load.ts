/**
 * Latency under load and first-second overshoot: one TCP flow saturating the shaped direction,
 * ping from the pod to the same peer once the flow is past its first second (the echo request waits
 * in the pod's egress shaper, the reply in its ingress shaper), and the receiver's first 1-second
 * interval. With static 1 ms bursts and with containerd's runtime burst (2^32−1 bits).
 */
import type { Bed } from '../lib/bed.ts';
import { pingRtts, sleepUntil, tcpFlow } from '../lib/flow.ts';
import { flatConfig, shape, unshape, type Limits } from '../lib/plugins.ts';
import { endpoint, type Pods, type SetupId } from '../lib/setups.ts';
import { max, percentile } from '../lib/stats.ts';
import { DIRECTIONS, type Direction } from './accuracy.ts';

export interface LoadCell {
  readonly setup: SetupId;
  readonly mode: Limits['mode'];
  readonly rateMbit: number;
  readonly direction: Direction;
  /** Receiver goodput in the first second / configured rate. */
  readonly firstSecond: number;
  /** Receiver goodput after the first second / configured rate. */
  readonly steady: number;
  readonly pingP50: number;
  readonly pingMax: number;
  readonly pingLost: number;
  readonly retransmits: number;
  readonly error?: string;
}

export interface LoadResult {
  readonly cells: LoadCell[];
  /** Idle round-trip time per setup (shaping installed, no traffic). */
  readonly idle: Array<{ setup: SetupId; p50: number; max: number }>;
}

const RATES_MBIT = [10, 100];
const MODES: ReadonlyArray<Limits['mode']> = ['static', 'containerd'];
const PING_INTERVAL_S = 0.05;

export async function load(bed: Bed, pods: Pods, options: { seconds: number }, log: (line: string) => void): Promise<LoadResult> {
  const cells: LoadCell[] = [];
  const idle: LoadResult['idle'] = [];
  const pings = Math.max(10, Math.floor((options.seconds - 1.5) / PING_INTERVAL_S));
  for (const setup of pods.setups) {
    const peer = setup.peers[0];
    for (const mode of MODES) {
      for (const rateMbit of RATES_MBIT) {
        const config = flatConfig(setup.plugin, setup.pod, { rateBits: rateMbit * 1e6, mode });
        await shape(bed, setup.plugin, setup.pod, config);
        try {
          if (idle.every((i) => i.setup !== setup.id)) {
            const rtts = await pingRtts(endpoint(setup.pod), peer.address, 20, PING_INTERVAL_S);
            idle.push({ setup: setup.id, p50: percentile(rtts, 50), max: max(rtts) });
          }
          for (const direction of DIRECTIONS) {
            const [from, to] = direction === 'egress' ? [setup.pod, peer] : [peer, setup.pod];
            const base = { setup: setup.id, mode, rateMbit, direction };
            try {
              const { flow, extra: rtts } = await tcpFlow(
                { from: endpoint(from), to: endpoint(to), seconds: options.seconds, parallel: 1 },
                async (startMs) => {
                  await sleepUntil(startMs + 1000);
                  return pingRtts(endpoint(setup.pod), peer.address, pings, PING_INTERVAL_S);
                },
              );
              const cell: LoadCell = {
                ...base,
                firstSecond: flow.firstSecondBits / (rateMbit * 1e6),
                steady: flow.goodputBits / (rateMbit * 1e6),
                pingP50: percentile(rtts, 50),
                pingMax: max(rtts),
                pingLost: pings - rtts.length,
                retransmits: flow.retransmits,
              };
              cells.push(cell);
              log(
                `load ${setup.id} ${mode} ${rateMbit} Mbit/s ${direction}: first second ${(cell.firstSecond * 100).toFixed(0)}%, ` +
                  `then ${(cell.steady * 100).toFixed(1)}%, ping p50 ${cell.pingP50.toFixed(1)} max ${cell.pingMax.toFixed(1)} ms, lost ${cell.pingLost}, ${cell.retransmits} retransmissions`,
              );
            } catch (error) {
              cells.push({ ...base, firstSecond: Number.NaN, steady: Number.NaN, pingP50: Number.NaN, pingMax: Number.NaN, pingLost: pings, retransmits: Number.NaN, error: String(error).slice(0, 300) });
              log(`load ${setup.id} ${mode} ${rateMbit} ${direction}: ${String(error).slice(0, 300)}`);
            }
          }
        } finally {
          await unshape(bed, setup.plugin, setup.pod, config);
        }
      }
    }
  }
  return { cells, idle };
}
