/** TCP goodput between two test namespaces with iperf3, bounded in time. */
import { execa } from 'execa';
import { expect } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from './run.ts';

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
}

/** Receiver-side goodput in Mbit/s. */
export async function goodputMbit(flow: Flow): Promise<number> {
  const seconds = flow.seconds ?? 4;
  const server = execa('ip', ['netns', 'exec', flow.peerNetns, 'iperf3', '-s', '-1', '-p', String(flow.port)], {
    reject: false,
    timeout: (seconds + 20) * 1000,
  });
  try {
    for (let i = 0; i < 50; i++) {
      const listening = await run('ip', ['netns', 'exec', flow.peerNetns, 'ss', '-Htln', `sport = :${flow.port}`]);
      if (listening.stdout.trim()) break;
      await sleep(50);
    }
    const client = await run(
      'ip',
      [
        'netns', 'exec', flow.podNetns, 'iperf3', '-c', flow.peerAddress, '-p', String(flow.port),
        '-t', String(seconds), '-O', String(flow.omitSeconds ?? 1), '-J', ...(flow.direction === 'ingress' ? ['-R'] : []),
      ],
      { timeoutMs: (seconds + 15) * 1000 },
    );
    if (client.exitCode !== 0) throw new Error(`iperf3 client failed: ${client.stdout.slice(0, 500)} ${client.stderr}`);
    const report = JSON.parse(client.stdout) as { end: { sum_received: { bits_per_second: number } } };
    return report.end.sum_received.bits_per_second / 1e6;
  } finally {
    server.kill('SIGKILL');
    await server;
  }
}

/** Exact shaping of a TCP flow at MTU 1500: 1448 payload bytes per 1514-byte frame. */
export const TCP_GOODPUT_RATIO = 1448 / 1514;
/** The same for IPv6, whose header is 20 bytes longer. */
export const TCP6_GOODPUT_RATIO = 1428 / 1514;

/**
 * TCP goodput within ±5% of exact shaping (95.6% of the configured wire rate at MTU 1500), with a
 * "configured X, measured Y" line so the numbers show up in the test output.
 */
export function expectShapedTo(label: string, measuredMbit: number, configuredMbit: number, ratio = TCP_GOODPUT_RATIO): void {
  const exact = configuredMbit * ratio;
  console.info(
    `${label}: configured ${configuredMbit} Mbit/s, measured ${measuredMbit.toFixed(2)} Mbit/s TCP goodput ` +
      `(${((measuredMbit / exact) * 100).toFixed(1)}% of exact shaping, ${exact.toFixed(2)})`,
  );
  const message = `${label}: ${measuredMbit.toFixed(2)} Mbit/s against ${exact.toFixed(2)} expected`;
  expect(measuredMbit, message).toBeGreaterThan(exact * 0.95);
  expect(measuredMbit, message).toBeLessThan(exact * 1.05);
}
