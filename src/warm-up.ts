/**
 * The CNI paths run once while the startup snapshot is built, so their bytecode is in the snapshot
 * instead of being compiled on a runtime's clock (ADD and DEL each compiled ~80 functions lazily,
 * measured). A stand-in session answers with what ip and tc print for a pod, so nothing here starts
 * a process, reads the real environment, caches a tool path or touches a file; a configuration
 * without CIDRs keeps ip-num out of the snapshot (it crashes the snapshot builder).
 */
import { newRecord } from './attachment/attach.ts';
import { removeShaping } from './attachment/remove.ts';
import { shapeAttachment } from './attachment/shape.ts';
import { runCni } from './cni/skel.ts';
import { tcqosCommands } from './commands/index.ts';
import { derivePolicy } from './config/derive.ts';
import type { Logger } from './log.ts';
import { NO_FAULTS } from './netns/faults.ts';
import type { NetnsSession, ToolRun } from './netns/session.ts';
import { lockPath } from './state/lock.ts';

/** `ip -j -d -force -batch` creating the ifb and listing the links of a pod (lo, eth0 on a veth, the ifb). */
const LINKS = "[{\"ifindex\":1,\"ifname\":\"lo\",\"flags\":[\"LOOPBACK\",\"UP\",\"LOWER_UP\"],\"mtu\":65536,\"qdisc\":\"noqueue\",\"operstate\":\"UNKNOWN\",\"linkmode\":\"DEFAULT\",\"group\":\"default\",\"txqlen\":1000,\"link_type\":\"loopback\",\"address\":\"00:00:00:00:00:00\",\"broadcast\":\"00:00:00:00:00:00\",\"promiscuity\":0,\"allmulti\":0,\"min_mtu\":0,\"max_mtu\":0,\"inet6_addr_gen_mode\":\"eui64\",\"num_tx_queues\":1,\"num_rx_queues\":1,\"gso_max_size\":65536,\"gso_max_segs\":65535,\"tso_max_size\":524280,\"tso_max_segs\":65535,\"gro_max_size\":65536},{\"ifindex\":2,\"link_index\":2,\"ifname\":\"eth0\",\"flags\":[\"BROADCAST\",\"MULTICAST\",\"UP\",\"LOWER_UP\"],\"mtu\":1500,\"qdisc\":\"noqueue\",\"operstate\":\"UP\",\"linkmode\":\"DEFAULT\",\"group\":\"default\",\"txqlen\":1000,\"link_type\":\"ether\",\"address\":\"06:cd:ec:12:36:32\",\"broadcast\":\"ff:ff:ff:ff:ff:ff\",\"link_netnsid\":0,\"promiscuity\":0,\"allmulti\":0,\"min_mtu\":68,\"max_mtu\":65535,\"linkinfo\":{\"info_kind\":\"veth\"},\"inet6_addr_gen_mode\":\"eui64\",\"num_tx_queues\":2,\"num_rx_queues\":2,\"gso_max_size\":65536,\"gso_max_segs\":65535,\"tso_max_size\":524280,\"tso_max_segs\":65535,\"gro_max_size\":65536},{\"ifindex\":533,\"ifname\":\"tcq9c32a8c7e59e\",\"flags\":[\"BROADCAST\",\"NOARP\",\"UP\",\"LOWER_UP\"],\"mtu\":65535,\"qdisc\":\"pfifo_fast\",\"operstate\":\"UNKNOWN\",\"linkmode\":\"DEFAULT\",\"group\":\"default\",\"txqlen\":1000,\"link_type\":\"ether\",\"address\":\"ce:65:b8:63:f2:df\",\"broadcast\":\"ff:ff:ff:ff:ff:ff\",\"promiscuity\":0,\"allmulti\":0,\"min_mtu\":0,\"max_mtu\":0,\"linkinfo\":{\"info_kind\":\"ifb\"},\"inet6_addr_gen_mode\":\"eui64\",\"num_tx_queues\":1,\"num_rx_queues\":1,\"gso_max_size\":65536,\"gso_max_segs\":65535,\"tso_max_size\":524280,\"tso_max_segs\":65535,\"gro_max_size\":65536}]\n";
/** `tc -s -j -force -batch` with `qdisc show dev eth0`, `qdisc show dev <its ifb>` and `filter show dev eth0 ingress` on a shaped pod. */
const QDISCS = "[{\"kind\":\"htb\",\"handle\":\"7c05:\",\"root\":true,\"refcnt\":3,\"options\":{\"r2q\":10,\"default\":\"0x10\",\"direct_packets_stat\":0,\"direct_qlen\":1000},\"bytes\":0,\"packets\":0,\"drops\":0,\"overlimits\":0,\"requeues\":0,\"backlog\":0,\"qlen\":0},{\"kind\":\"tbf\",\"handle\":\"7c10:\",\"parent\":\"7c05:10\",\"options\":{\"rate\":12500000,\"burst\":14012,\"lat\":8879},\"bytes\":0,\"packets\":0,\"drops\":0,\"overlimits\":0,\"requeues\":0,\"backlog\":0,\"qlen\":0},{\"kind\":\"ingress\",\"handle\":\"ffff:\",\"parent\":\"ffff:fff1\",\"options\":{},\"bytes\":0,\"packets\":0,\"drops\":0,\"overlimits\":0,\"requeues\":0,\"backlog\":0,\"qlen\":0}]\n[{\"kind\":\"htb\",\"handle\":\"7c05:\",\"root\":true,\"refcnt\":2,\"options\":{\"r2q\":10,\"default\":\"0x10\",\"direct_packets_stat\":0,\"direct_qlen\":1000},\"bytes\":0,\"packets\":0,\"drops\":0,\"overlimits\":0,\"requeues\":0,\"backlog\":0,\"qlen\":0},{\"kind\":\"tbf\",\"handle\":\"7c10:\",\"parent\":\"7c05:10\",\"options\":{\"rate\":12500000,\"burst\":14012,\"lat\":8879},\"bytes\":0,\"packets\":0,\"drops\":0,\"overlimits\":0,\"requeues\":0,\"backlog\":0,\"qlen\":0}]\n[{\"parent\":\"ffff:\",\"protocol\":\"all\",\"pref\":31749,\"kind\":\"u32\",\"chain\":0},{\"parent\":\"ffff:\",\"protocol\":\"all\",\"pref\":31749,\"kind\":\"u32\",\"chain\":0,\"options\":{\"fh\":\"800:\",\"ht_divisor\":1}},{\"parent\":\"ffff:\",\"protocol\":\"all\",\"pref\":31749,\"kind\":\"u32\",\"chain\":0,\"options\":{\"fh\":\"800::800\",\"order\":2048,\"key_ht\":\"800\",\"bkt\":\"0\",\"not_in_hw\":true,\"match\":{\"value\":\"0\",\"mask\":\"0\",\"offmask\":\"\",\"off\":0},\"actions\":[{\"order\":1,\"kind\":\"mirred\",\"mirred_action\":\"redirect\",\"direction\":\"egress\",\"to_dev\":\"tcq9c32a8c7e59e\",\"control_action\":{\"type\":\"stolen\"},\"index\":1,\"ref\":1,\"bind\":1,\"installed\":0,\"last_used\":0,\"stats\":{\"bytes\":0,\"packets\":0,\"drops\":0,\"overlimits\":0,\"requeues\":0,\"backlog\":0,\"qlen\":0}}]}}]\n";

const POD = '/var/run/netns/tcqos-warm-up';
const PREV_RESULT = { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: POD }], ips: [{ address: '192.0.2.2/24', interface: 0 }] };
/** Both directions, a class beside the default, and containerd's runtime values (Go-cased keys, huge bursts). */
const CONFIG = {
  cniVersion: '1.1.0',
  name: 'warm-up',
  type: 'tcqos',
  capabilities: { bandwidth: true, 'io.kubernetes.cri.pod-annotations': true },
  egress: { rate: '50mbit', classes: [{ name: 'a', rate: '10mbit', ceil: '20mbit', priority: 1 }] },
  ingress: { rate: '50mbit' },
  runtimeConfig: { bandwidth: { IngressRate: 20_000_000, IngressBurst: 4_294_967_295, EgressRate: 10_000_000, EgressBurst: 4_294_967_295 } },
};

const answered = (command: string, stdout: string): ToolRun => ({ command, exitCode: 0, stdout, stderr: '' });

/** Answers like a pod where ip and tc succeed. */
const standIn = {
  path: POD,
  faults: NO_FAULTS,
  runner: { run: async () => ({ exitCode: 0, stdout: '', stderr: '' }) },
  run: async (tool: string, args: readonly string[]) => answered(`${tool} ${args.join(' ')}`, tool === 'ip' ? LINKS : args.includes('-j') ? QDISCS : ''),
  mustRun: async (tool: string, args: readonly string[]) => answered(`${tool} ${args.join(' ')}`, ''),
  start: (tool: string, args: readonly string[]) => ({ pid: undefined, done: Promise.resolve(answered(`${tool} ${args.join(' ')}`, '')) }),
  whenDeviceGone: async () => false,
  close: () => undefined,
} as unknown as NetnsSession;

const silent: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };

function cni(command: string, config: object): Promise<number> {
  const stdin = Buffer.from(JSON.stringify({ ...config, prevResult: PREV_RESULT }));
  const env = { CNI_COMMAND: command, CNI_CONTAINERID: 'warm-up', CNI_NETNS: POD, CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' };
  return runCni({ env, readStdin: async () => stdin, writeStdout: () => undefined }, tcqosCommands());
}

export async function warmUpCniPaths(): Promise<void> {
  await cni('VERSION', CONFIG);
  await cni('ADD', { cniVersion: '1.1.0', name: 'warm-up', type: 'tcqos' }); // nothing to shape: returns before any namespace or file
  await cni('ADD', CONFIG); // the namespace does not exist: refused with a CNI error, nothing touched
  const derived = await derivePolicy({ config: CONFIG });
  const record = newRecord({ containerId: 'warm-up', ifname: 'eth0', netns: POD, network: 'warm-up', config: CONFIG, derived });
  await shapeAttachment(standIn, { ifname: 'eth0', site: 'pod', policy: derived.policy, classIds: record.classIds }, silent);
  await removeShaping(standIn, 'eth0');
  lockPath('/run/tcqos', POD, 'eth0');
}
