/**
 * Measuring a shaped path: TCP flows with iperf3 (the server always on the receiving side, so its
 * per-second intervals are the receiver's view), qdisc byte counters for the rate on the wire, and
 * ping for the delay a saturated queue adds. Every process is bounded in time.
 */
import { execa } from 'execa';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from '../../test/helpers/run.ts';
import type { Shaper } from './plugins.ts';

export interface Endpoint {
  readonly netns: string;
  readonly address: string;
}

export interface FlowSpec {
  readonly from: Endpoint;
  readonly to: Endpoint;
  readonly seconds: number;
  readonly parallel: number;
}

/** BENCH_CC: the senders' TCP congestion control (iperf3 -C); unset, the kernel's default. */
const CONGESTION_CONTROL = process.env['BENCH_CC'] || undefined;

export interface Interval {
  readonly start: number;
  readonly seconds: number;
  readonly bytes: number;
}

export interface FlowResult {
  readonly intervals: readonly Interval[];
  /** TCP retransmissions the sender counted. */
  readonly retransmits: number;
  /** Receiver goodput in bit/s after the first second (slow start, initial burst). */
  readonly goodputBits: number;
  /** Receiver goodput in bit/s during the first second. */
  readonly firstSecondBits: number;
}

let nextPort = 5400 + (process.pid % 200);
function port(): number {
  nextPort = nextPort >= 5990 ? 5400 : nextPort + 1;
  return nextPort;
}

/** Milliseconds since an arbitrary origin, monotonic. */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/**
 * Runs one iperf3 test from `spec.from` to `spec.to`. `during` runs alongside, given the time the
 * client was started (nowMs()), e.g. to sample counters or ping.
 */
export async function tcpFlow<T>(spec: FlowSpec, during: (startMs: number) => Promise<T>): Promise<{ flow: FlowResult; extra: T }> {
  const p = port();
  const bound = String(spec.seconds + 30);
  const server = execa('timeout', [bound, 'ip', 'netns', 'exec', spec.to.netns, 'iperf3', '-s', '-1', '-J', '-i', '1', '-p', String(p)], {
    reject: false,
  });
  try {
    await waitListening(spec.to.netns, p);
    const startMs = nowMs();
    const client = run(
      'timeout',
      [bound, 'ip', 'netns', 'exec', spec.from.netns, 'iperf3', '-c', spec.to.address, '-p', String(p),
        '-t', String(spec.seconds), '-P', String(spec.parallel), '-J', ...(CONGESTION_CONTROL ? ['-C', CONGESTION_CONTROL] : [])],
      { timeoutMs: (spec.seconds + 40) * 1000 },
    );
    const [ran, extra] = await Promise.all([client, during(startMs)]);
    if (ran.exitCode !== 0) throw new Error(`iperf3 client failed (${ran.exitCode}): ${ran.stdout.slice(0, 300)} ${ran.stderr}`);
    const served = await server;
    const sent = JSON.parse(ran.stdout) as { end?: { sum_sent?: { retransmits?: number } } };
    return { flow: { ...parseServer(String(served.stdout), spec.seconds), retransmits: sent.end?.sum_sent?.retransmits ?? 0 }, extra };
  } finally {
    // SIGTERM reaches iperf3 through timeout (SIGKILL would orphan a server still waiting)
    server.kill('SIGTERM');
    await server;
  }
}

async function waitListening(netns: string, p: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const listening = await run('ss', ['-N', netns, '-Htln', `sport = :${p}`]);
    if (listening.stdout.trim()) return;
    await sleep(20);
  }
  throw new Error(`iperf3 server in ${netns} did not listen on ${p}`);
}

interface ServerJson {
  intervals: Array<{ sum: { start: number; seconds: number; bytes: number } }>;
}

/**
 * The receiver's intervals; goodput over those from 1 s to the client's end (the receiver goes on
 * counting while a deep queue drains after the sender stopped; that tail is not the shaped rate).
 */
function parseServer(text: string, clientSeconds: number): Omit<FlowResult, 'retransmits'> {
  const json = JSON.parse(text) as ServerJson;
  const intervals = json.intervals.map(({ sum }) => ({ start: sum.start, seconds: sum.seconds, bytes: sum.bytes }));
  const first = intervals[0];
  const steady = intervals.filter((i) => i.start >= 0.999 && i.start + i.seconds <= clientSeconds + 0.05 && i.seconds > 0.05);
  const steadySeconds = steady.reduce((s, i) => s + i.seconds, 0);
  return {
    intervals,
    goodputBits: steadySeconds ? (steady.reduce((s, i) => s + i.bytes, 0) * 8) / steadySeconds : 0,
    firstSecondBits: first ? (first.bytes * 8) / first.seconds : 0,
  };
}

export interface CounterReading {
  readonly atMs: number;
  /** Bytes sent: "root" for the root qdisc, "RATE/CEIL" as tc prints them ("40Mbit/40Mbit") for each HTB class. */
  readonly bytes: ReadonlyMap<string, number>;
}

/**
 * Reads a shaper's byte counters (tc counts frames: Ethernet header included, no FCS) through one
 * long-lived `tc -s -batch -` in the shaper's namespace, so a reading costs a netlink dump, not a
 * process, and is timestamped within a fraction of a millisecond.
 */
export class CounterReader {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly query: string;
  private buffer = '';
  private key: string | undefined;
  private current = new Map<string, number>();
  private waiting: { resolve: (reading: CounterReading) => void; reject: (error: Error) => void } | undefined;
  private failure: Error | undefined;

  constructor(shaper: Shaper, classes: boolean) {
    this.query = `${classes ? `class show dev ${shaper.dev}\n` : ''}qdisc show dev ${shaper.dev}\n`;
    this.child = spawn('tc', ['-n', shaper.netns, '-s', '-batch', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (chunk: string) => this.take(chunk));
    this.child.stderr.resume();
    this.child.stdin.on('error', () => undefined);
    this.child.on('close', () => this.fail(new Error(`tc stopped reading counters of ${shaper.dev} in ${shaper.netns}`)));
  }

  read(): Promise<CounterReading> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.child.stdin.write(this.query);
    });
  }

  close(): void {
    this.child.stdin.end();
    this.child.kill();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.waiting?.reject(error);
    this.waiting = undefined;
  }

  /** tc prints each class and qdisc as a header line, then " Sent N bytes ..."; the root qdisc comes last. */
  private take(chunk: string): void {
    this.buffer += chunk;
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline);
      this.buffer = this.buffer.slice(newline + 1);
      const klass = /^class htb \S+ .*?rate (\S+) ceil (\S+)/.exec(line);
      if (klass) this.key = `${klass[1]}/${klass[2]}`;
      else if (line.startsWith('qdisc ')) this.key = / root /.test(line) ? 'root' : undefined;
      const sent = /^\s*Sent (\d+) bytes/.exec(line);
      if (!sent || this.key === undefined) continue;
      this.current.set(this.key, Number(sent[1]));
      if (this.key === 'root') {
        const reading = { atMs: nowMs(), bytes: this.current };
        this.current = new Map();
        this.waiting?.resolve(reading);
        this.waiting = undefined;
      }
      this.key = undefined;
    }
  }
}

const SAMPLE_EVERY_MS = 10;

/**
 * Rate in bit/s per counter over the flow's steady window [1 s, end − 0.15 s]. A shaper releases
 * whole GSO packets (with BBR up to ~64 KB: half a second at 1 Mbit/s), so its counters move in
 * steps: the rate is taken between the first and the last step seen in the window (sampled every
 * 10 ms), counting the bytes released before the last step, i.e. the packets the time between the
 * two steps paid for.
 */
export function rateSampler(shaper: Shaper, classes: boolean, seconds: number): (startMs: number) => Promise<Map<string, number>> {
  return async (startMs) => {
    const reader = new CounterReader(shaper, classes);
    const readings: CounterReading[] = [];
    try {
      await sleepUntil(startMs + 1000);
      while (nowMs() < startMs + seconds * 1000 - 150) {
        readings.push(await reader.read());
        await sleepUntil(readings.at(-1)!.atMs + SAMPLE_EVERY_MS);
      }
    } finally {
      reader.close();
    }
    const rates = new Map<string, number>();
    for (const key of readings.at(-1)?.bytes.keys() ?? []) {
      rates.set(key, stepRate(readings.map((r) => [r.atMs, r.bytes.get(key) ?? 0] as const)) * 8);
    }
    return rates;
  };
}

/** Bytes per second between the first and the last step of a counter sampled at [ms, bytes]. */
export function stepRate(samples: ReadonlyArray<readonly [number, number]>): number {
  const steps: number[] = [];
  for (let i = 1; i < samples.length; i++) if (samples[i]![1] > samples[i - 1]![1]) steps.push(i);
  const first = steps[0];
  const last = steps.at(-1);
  if (first === undefined || last === undefined || last === first) return Number.NaN;
  const at = (i: number) => (samples[i - 1]![0] + samples[i]![0]) / 2;
  return (samples[last - 1]![1] - samples[first - 1]![1]) / ((at(last) - at(first)) / 1000);
}

export async function sleepUntil(ms: number): Promise<void> {
  const left = ms - nowMs();
  if (left > 0) await sleep(left);
}

/** Round-trip times in ms of `count` pings, one every `intervalS` seconds. */
export async function pingRtts(from: Endpoint, to: string, count: number, intervalS: number): Promise<number[]> {
  const ran = await run('ip', ['netns', 'exec', from.netns, 'ping', '-n', '-c', String(count), '-i', String(intervalS), '-W', '2', to], {
    timeoutMs: (count * intervalS + 10) * 1000,
  });
  return [...ran.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
}
