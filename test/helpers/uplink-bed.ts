/**
 * A node with a shared uplink, for the uplink tests and bench: a throwaway "node" namespace whose
 * veth `up0` is the uplink, its peer in an "outside" namespace; macvlan pods on `up0` (bridge mode)
 * whose senders run in kubelet-shaped cgroups of their own (`<test root>/kubepods/besteffort/pod<uid>/ctr`),
 * so the uplink's classifier tells them apart by cgroup. The built plugin runs in the node namespace.
 * What each class gets is read from the uplink's HTB byte counters: bytes on the wire.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { classFromText } from '../../src/netns/parse.ts';
import { ifbName } from '../../src/tc/handles.ts';
import { goodputMbit, type Flow } from './iperf.ts';
import { invoke, podCniArgs, prevResultFor, TEST_STATE_DIR, type PluginResult } from './plugin.ts';
import { inNetns, must } from './run.ts';
import { mbitBetween, stamped, type Stamped } from './stamped.ts';
import { cpuTimes, stolenPercent } from './steal.ts';
import { Testbed, type Pod } from './testbed.ts';
import { TestCgroups } from './tools.ts';

export const UPLINK = 'up0';

export interface UplinkPod extends Pod {
  readonly uid: string;
  /** The pod's container cgroup: where its senders run. */
  readonly container: string;
  readonly containerId: string;
}

/** Mbit/s on the wire of one class while a flow ran, and how much CPU the host stole meanwhile. */
export interface ClassRate {
  readonly mean: number;
  readonly bestSecond: number;
  readonly stolenPercent: number;
}

export class UplinkBed {
  readonly bed: Testbed;
  readonly outsideAddress: string;
  readonly nodeAddress: string;
  node = '';
  outside = '';
  cgroups: TestCgroups | undefined;
  private pods = 0;

  constructor(prefix: string, subnet: number) {
    this.bed = new Testbed(prefix, subnet);
    this.outsideAddress = this.bed.v4(1);
    this.nodeAddress = this.bed.v4(2);
  }

  async setUp(): Promise<void> {
    await this.bed.removeLeftovers();
    this.cgroups = await TestCgroups.create(this.bed.prefix);
    this.node = await this.bed.netns('node');
    this.outside = await this.bed.netns('out');
    await must('ip', ['-n', this.node, 'link', 'add', 'name', UPLINK, 'type', 'veth', 'peer', 'name', 'out0', 'netns', this.outside]);
    for (const [netns, dev, address] of [[this.node, UPLINK, this.nodeAddress], [this.outside, 'out0', this.outsideAddress]] as const) {
      await must('ip', ['-n', netns, 'addr', 'add', `${address}/24`, 'dev', dev]);
      await must('ip', ['-n', netns, 'link', 'set', dev, 'up']);
    }
  }

  async tearDown(): Promise<void> {
    await this.bed.destroy();
    await this.cgroups?.destroy();
  }

  /** A tcqos network configuration with an uplink of `capacityMbit` (and `uplink` keys over the defaults). */
  conflist(capacityMbit: number, directions: { egress?: object; ingress?: object }, uplink: object = {}): Record<string, unknown> {
    return {
      cniVersion: '1.0.0',
      name: 'upl',
      type: 'tcqos',
      cgroupRoot: `/${this.cgroups!.name}`,
      uplink: { name: UPLINK, capacity: `${capacityMbit}mbit`, enforce: true, maxGuaranteePerAttachment: `${capacityMbit * 0.9}mbit`, ...uplink },
      ...directions,
    };
  }

  async pod(name: string): Promise<UplinkPod> {
    const pod = await this.bed.macvlanPod(this.node, name, 10 + this.pods++, 'eth0', UPLINK);
    const uid = randomUUID();
    const container = this.cgroups!.make(`${this.cgroups!.name}/kubepods/besteffort/pod${uid}/ctr`);
    return { ...pod, uid, container, containerId: `upl-${name}` };
  }

  call(command: 'ADD' | 'DEL' | 'CHECK', pod: UplinkPod, config: Record<string, unknown>): Promise<PluginResult> {
    return invoke(this.node, {
      command,
      config: { ...config, prevResult: prevResultFor('1.0.0', pod.path) },
      netns: pod.path,
      containerId: pod.containerId,
      extraEnv: { CNI_ARGS: podCniArgs({ namespace: 'upl', name: pod.netns, uid: pod.uid }) },
    });
  }

  record(pod: UplinkPod): { uplinkClass?: { minor: number; mac: string; cgroup?: object } } {
    return JSON.parse(readFileSync(`${TEST_STATE_DIR}/attachments/eth0@${pod.containerId}.json`, 'utf8')) as never;
  }

  /** The pod's class on the uplink's trees ("7c05:11"). */
  classOf(pod: UplinkPod): string {
    return `7c05:${this.record(pod).uplinkClass!.minor.toString(16)}`;
  }

  /** Each HTB class's byte counter on a device of the node. */
  async classBytes(dev: string): Promise<Map<string, number>> {
    const text = await inNetns(this.node, 'tc', ['-s', 'class', 'show', 'dev', dev]);
    const blocks = text.split('\n').reduce<string[]>((all, line) => {
      if (line.startsWith('class ')) all.push(line);
      else if (all.length) all[all.length - 1] += `\n${line}`;
      return all;
    }, []);
    return new Map(blocks.filter((block) => block.startsWith('class htb')).map((block) => [classFromText(block).id, classFromText(block).counters?.bytes ?? 0]));
  }

  /**
   * A flow from a pod (or the node) to the outside, its client in the pod's container cgroup.
   * Ports from `port` on: each flow needs its own.
   */
  flow(pod: UplinkPod | undefined, direction: 'egress' | 'ingress', port: number, streams: number): Flow {
    return {
      podNetns: pod?.netns ?? this.node,
      peerNetns: this.outside,
      peerAddress: this.outsideAddress,
      port,
      direction,
      streams,
      ...(pod ? { cgroup: pod.container } : {}),
    };
  }

  /**
   * Runs the flows at once and returns each uplink class's wire rate (Mbit/s) over the window from
   * `from` to `to` seconds into them, on the uplink (egress) or its ifb (ingress). The window starts late
   * enough for every flow to be running: each waits for its own iperf3 server first.
   */
  async wireRates(direction: 'egress' | 'ingress', flows: readonly Flow[], from = 3, to = 7): Promise<Map<string, number>> {
    const dev = direction === 'egress' ? UPLINK : ifbName(UPLINK);
    const { readings } = await this.readDuring(flows, from, to, () => this.classBytes(dev));
    const [before, after] = [readings[0]!, readings.at(-1)!];
    return new Map([...after.value].map(([key, bytes]) => [key, mbitBetween({ value: before.value.get(key) ?? 0, at: before.at }, { value: bytes, at: after.at })]));
  }

  /**
   * One class's wire rate while a flow runs: the mean from 2 to 8 s into it, and its best second
   * (counters read every 250 ms). What a class is allowed shows in its best second: on this VM a
   * shaper with a backlog queued still loses whole milliseconds when its timer fires late under
   * stolen CPU, which pulls the mean down by up to a tenth (measured 88-99.6 Mbit/s of an
   * unchanged 100 Mbit/s tree), while a class held at X cannot show a second above X plus its
   * 1 ms bucket.
   */
  async classRateOf(direction: 'egress' | 'ingress', flow: Flow, classId: string): Promise<ClassRate> {
    const dev = direction === 'egress' ? UPLINK : ifbName(UPLINK);
    const read = async () => (await this.classBytes(dev)).get(classId) ?? 0;
    const { readings, stolenPercent: stolen } = await this.readDuring([flow], 2, 8, read, 250);
    const secondsLater = readings.flatMap((from, i) => readings.slice(i + 1).filter((to) => to.at - from.at >= 1000).slice(0, 1).map((to) => mbitBetween(from, to)));
    return { mean: mbitBetween(readings[0]!, readings.at(-1)!), bestSecond: Math.max(...secondsLater), stolenPercent: stolen };
  }

  /**
   * Runs the flows at once and reads `read` from `from` to `to` seconds into them: at both ends, and
   * every `everyMs` between them when given; with the share of CPU the host stole meanwhile.
   */
  private async readDuring<T>(flows: readonly Flow[], from: number, to: number, read: () => Promise<T>, everyMs = (to - from) * 1000): Promise<{ readings: Array<Stamped<T>>; stolenPercent: number }> {
    const running = Promise.all(flows.map((flow) => goodputMbit({ ...flow, seconds: to + 1 })));
    await sleep(from * 1000);
    const cpuBefore = cpuTimes();
    const readings = [await stamped(read)];
    while (readings.at(-1)!.at - readings[0]!.at < (to - from) * 1000) {
      await sleep(everyMs);
      readings.push(await stamped(read));
    }
    const stolen = stolenPercent(cpuBefore, cpuTimes());
    await running;
    return { readings, stolenPercent: stolen };
  }
}
