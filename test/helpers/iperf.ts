/** TCP goodput between two test namespaces with iperf3, bounded in time. */
import { execa } from 'execa';
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
}

/** Receiver-side goodput in Mbit/s, excluding the first (slow-start) second. */
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
        '-t', String(seconds), '-O', '1', '-J', ...(flow.direction === 'ingress' ? ['-R'] : []),
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
