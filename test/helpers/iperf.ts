/** TCP goodput between two test namespaces with iperf3, bounded in time. */
import { execa } from 'execa';
import { expect } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from './run.ts';
import { cpuTimes, stolenPercent } from './steal.ts';

export interface Flow {
  /** Namespace of the pod (the iperf3 client). */
  readonly podNetns: string;
  /** Namespace and address of the remote peer (the iperf3 server). */
  readonly peerNetns: string;
  readonly peerAddress: string;
  readonly port: number;
  /** ingress = data flows from peer to pod (iperf3 -R). */
  readonly direction: 'egress' | 'ingress';
  readonly seconds?: number;
  /** Leading seconds left out of the result (default 1: slow start); 0 measures a fresh flow's start. */
  readonly omitSeconds?: number;
  /** Parallel TCP streams (iperf3 -P), default 1. */
  readonly streams?: number;
  /** A cgroup v2 directory the client runs in (a pod's container), joined before it starts. */
  readonly cgroup?: string;
}

/** The iperf3 client's command line in the pod: in its cgroup when the flow names one. */
async function clientCommand(flow: Flow, args: readonly string[]): Promise<[string, string[]]> {
  const inPod = ['ip', 'netns', 'exec', flow.podNetns, 'iperf3', '-c', flow.peerAddress, '-p', String(flow.port), ...(flow.streams ? ['-P', String(flow.streams)] : []), ...args];
  if (!flow.cgroup) return [inPod[0]!, inPod.slice(1)];
  const { tool } = await import('./tools.ts');
  return [await tool('cgexec'), [flow.cgroup, ...inPod]];
}

/** Runs `work` while a one-shot iperf3 server listens in the peer's namespace (killed afterwards). */
async function withServer<T>(flow: Flow, seconds: number, serverArgs: readonly string[], work: () => Promise<T>): Promise<T> {
  const server = execa('ip', ['netns', 'exec', flow.peerNetns, 'iperf3', '-s', '-1', ...serverArgs, '-p', String(flow.port)], {
    reject: false,
    timeout: (seconds + 20) * 1000,
  });
  try {
    for (let i = 0; i < 50; i++) {
      const listening = await run('ip', ['netns', 'exec', flow.peerNetns, 'ss', '-Htln', `sport = :${flow.port}`]);
      if (listening.stdout.trim()) break;
      await sleep(50);
    }
    return await work();
  } finally {
    server.kill('SIGKILL');
    await server;
  }
}

/** Receiver-side goodput in Mbit/s. */
export async function goodputMbit(flow: Flow): Promise<number> {
  const seconds = flow.seconds ?? 4;
  return withServer(flow, seconds, [], async () => {
    const client = await run(
      ...(await clientCommand(flow, ['-t', String(seconds), '-O', String(flow.omitSeconds ?? 1), '-J', ...(flow.direction === 'ingress' ? ['-R'] : [])])),
      { timeoutMs: (seconds + 15) * 1000 },
    );
    if (client.exitCode !== 0) throw new Error(`iperf3 client failed: ${client.stdout.slice(0, 500)} ${client.stderr}`);
    const report = JSON.parse(client.stdout) as { end: { sum_received: { bits_per_second: number } } };
    return report.end.sum_received.bits_per_second / 1e6;
  });
}

/** Exact shaping of a TCP flow at MTU 1500: 1448 payload bytes per 1514-byte frame. */
export const TCP_GOODPUT_RATIO = 1448 / 1514;
/** The same for IPv6, whose header is 20 bytes longer. */
export const TCP6_GOODPUT_RATIO = 1428 / 1514;
/** Frames counted on the wire (link or class counters) carry the configured rate itself. */
export const WIRE_RATIO = 1;

/** The share of exact shaping a TCP flow's goodput must exceed (why so low: expectShapedTo). */
const GOODPUT_FLOOR = 0.8;
const CEILING = 1.05;

/**
 * TCP goodput from 20% under to 5% over exact shaping (95.6% of the configured wire rate at MTU
 * 1500), with a "configured X, measured Y" line so the numbers show up in the test output. Over is
 * what a limit must never allow, and stays tight. Under is loose because this VM's CPU is stolen at
 * times (3% on average, 15-30% in bursts of seconds): a sender that misses its turn loses TCP
 * goodput to drops at the leaf queue, and a shaper whose timer fires late loses the time, so
 * passing runs measured 82-95% of exact at 40-50 Mbit/s on the same code that measured 99% an hour
 * earlier. 0.80 still tells every outcome these tests compare apart (a guarantee from an equal
 * split, a rate from its ceil, one network's cap from another's); exactness itself is asserted on
 * the wire (class counters within 2%) and measured in bench/.
 */
function expectShapedTo(label: string, measuredMbit: number, configuredMbit: number, ratio = TCP_GOODPUT_RATIO): void {
  const exact = configuredMbit * ratio;
  console.info(
    `${label}: configured ${configuredMbit} Mbit/s, measured ${measuredMbit.toFixed(2)} Mbit/s ${ratio === WIRE_RATIO ? 'on the wire' : 'TCP goodput'} ` +
      `(${((measuredMbit / exact) * 100).toFixed(1)}% of exact shaping, ${exact.toFixed(2)})`,
  );
  const message = `${label}: ${measuredMbit.toFixed(2)} Mbit/s against ${exact.toFixed(2)} expected`;
  expect(measuredMbit, message).toBeGreaterThan(exact * GOODPUT_FLOOR);
  expect(measuredMbit, message).toBeLessThan(exact * CEILING);
}

/** What one measured flow (or sum of flows) should carry: its label, configured Mbit/s and goodput ratio. */
export type ShapedTo = readonly [label: string, configuredMbit: number, ratio?: number];

/**
 * `expectShapedTo` for flows that can be measured again: `measure` runs them (together) and returns
 * one goodput per `expected` entry. A try in which a flow fell under the floor and none went over
 * the ceiling is measured again, up to three tries, with the CPU the host stole during it logged:
 * falling short is what a burst of stolen CPU does to a correct tree, going over never is, so an
 * excess fails at once and a tree that shapes too tight fails all three.
 */
export async function expectShaped(measure: () => Promise<number | readonly number[]>, ...expected: readonly ShapedTo[]): Promise<void> {
  const exact = expected.map(([, mbit, ratio = TCP_GOODPUT_RATIO]) => mbit * ratio);
  for (let attempt = 1; ; attempt++) {
    const cpuBefore = cpuTimes();
    const measured = [await measure()].flat();
    const short = measured.some((mbit, i) => mbit <= exact[i]! * GOODPUT_FLOOR);
    const over = measured.some((mbit, i) => mbit >= exact[i]! * CEILING);
    if (over || !short || attempt === 3) {
      expected.forEach(([label, mbit, ratio], i) => expectShapedTo(attempt > 1 ? `${label} (try ${attempt})` : label, measured[i]!, mbit, ratio));
      return;
    }
    const shown = expected.map(([label], i) => `${label} ${measured[i]!.toFixed(2)}`).join(', ');
    console.info(`${shown} Mbit/s: under ${GOODPUT_FLOOR} of exact shaping on try ${attempt}, CPU stolen ${stolenPercent(cpuBefore, cpuTimes()).toFixed(0)}%; measuring again`);
  }
}

export interface IntervalReport {
  /** Receiver-side goodput of each interval, in order: [start s, end s, Mbit/s]. */
  readonly intervals: ReadonlyArray<readonly [number, number, number]>;
  /** Payload bytes the receiver got. */
  readonly bytesReceived: number;
}

interface IntervalJson {
  intervals: Array<{ sum: { start: number; end: number; bits_per_second: number } }>;
  end: { sum_received: { bytes: number } };
}

/**
 * One bounded iperf3 flow reporting every `intervalSeconds` (for watching a rate change mid-flow);
 * started at once, resolving when it ends. Rejects if the flow fails (a reset connection included).
 * Intervals are the receiver's: a sender's count what entered its socket buffer, not the wire.
 */
export async function flowWithIntervals(flow: Flow & { readonly seconds: number }, intervalSeconds = 0.5): Promise<IntervalReport> {
  // The server reports its own intervals (as JSON, handed back by --get-server-output).
  return withServer(flow, flow.seconds, ['-J', '-i', String(intervalSeconds)], async () => {
    const client = await run(
      ...(await clientCommand(flow, ['-t', String(flow.seconds), '-i', String(intervalSeconds), '-J', ...(flow.direction === 'ingress' ? ['-R'] : ['--get-server-output'])])),
      { timeoutMs: (flow.seconds + 15) * 1000 },
    );
    if (client.exitCode !== 0) throw new Error(`iperf3 client failed: ${client.stdout.slice(0, 500)} ${client.stderr}`);
    const report = JSON.parse(client.stdout) as IntervalJson & { server_output_json?: IntervalJson };
    const receiver = flow.direction === 'ingress' ? report : report.server_output_json!;
    return {
      intervals: receiver.intervals.map(({ sum }) => [sum.start, sum.end, sum.bits_per_second / 1e6] as const),
      bytesReceived: report.end.sum_received.bytes,
    };
  });
}
