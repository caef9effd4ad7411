/**
 * Throwaway network namespaces for kernel tests. Every name starts with the test file's own prefix,
 * leftovers of a crashed earlier run with that prefix are removed first, and `destroy` removes every
 * namespace (and so every link inside it) by name, also when a test failed.
 */
import { must, run } from './run.ts';

export interface Pod {
  readonly netns: string;
  readonly path: string;
  readonly ifname: string;
  readonly ipv4: string;
  readonly ipv6: string;
}

export class Testbed {
  readonly prefix: string;
  /** Third octet of this file's 198.18.X.0/24 and hextet of 2001:2:X::/64. */
  readonly subnet: number;
  private readonly namespaces: string[] = [];
  private macvlanCount = 0;

  constructor(prefix: string, subnet: number) {
    if (!/^[a-z0-9]{2,6}$/.test(prefix)) throw new Error(`bad test prefix ${prefix}`);
    this.prefix = prefix;
    this.subnet = subnet;
  }

  async removeLeftovers(): Promise<void> {
    const listed = await run('ip', ['netns', 'list']);
    for (const line of listed.stdout.split('\n')) {
      const name = line.split(' ')[0];
      if (name?.startsWith(`${this.prefix}-`)) await run('ip', ['netns', 'del', name]);
    }
  }

  async netns(name: string): Promise<string> {
    const full = `${this.prefix}-${name}`;
    await must('ip', ['netns', 'add', full]);
    this.namespaces.push(full);
    // No duplicate address detection: tests send as soon as addresses are set.
    await must('ip', ['netns', 'exec', full, 'sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
    await must('ip', ['-n', full, 'link', 'set', 'lo', 'up']);
    return full;
  }

  v4(host: number): string {
    return `198.18.${this.subnet}.${host}`;
  }

  v6(host: number): string {
    return `2001:2:${this.subnet.toString(16)}::${host.toString(16)}`;
  }

  /**
   * A macvlan "network": a hub namespace holding a veth pair whose first end is the macvlan parent
   * (bridge mode, so children reach each other inside the kernel).
   */
  async macvlanHub(): Promise<string> {
    const hub = await this.netns('hub');
    await must('ip', ['-n', hub, 'link', 'add', 'name', 'parent0', 'type', 'veth', 'peer', 'name', 'parent1']);
    await must('ip', ['-n', hub, 'link', 'set', 'parent0', 'up']);
    await must('ip', ['-n', hub, 'link', 'set', 'parent1', 'up']);
    return hub;
  }

  /** A namespace with a macvlan child of the hub's `master` (parent0), named `ifname`, at host number `host`. */
  async macvlanPod(hub: string, name: string, host: number, ifname = 'eth0', master = 'parent0'): Promise<Pod> {
    const netns = await this.netns(name);
    const temp = `mv${this.macvlanCount++}`;
    await must('ip', ['-n', hub, 'link', 'add', 'link', master, 'name', temp, 'type', 'macvlan', 'mode', 'bridge']);
    await must('ip', ['-n', hub, 'link', 'set', temp, 'netns', netns]);
    await must('ip', ['-n', netns, 'link', 'set', temp, 'name', ifname]);
    return this.addressed(netns, ifname, host);
  }

  /** Adds a further macvlan attachment (e.g. net1) to an existing pod namespace. */
  async addMacvlan(hub: string, pod: Pod, ifname: string, host: number): Promise<Pod> {
    const temp = `mv${this.macvlanCount++}`;
    await must('ip', ['-n', hub, 'link', 'add', 'link', 'parent0', 'name', temp, 'type', 'macvlan', 'mode', 'bridge']);
    await must('ip', ['-n', hub, 'link', 'set', temp, 'netns', pod.netns]);
    await must('ip', ['-n', pod.netns, 'link', 'set', temp, 'name', ifname]);
    return this.addressed(pod.netns, ifname, host);
  }

  private async addressed(netns: string, ifname: string, host: number): Promise<Pod> {
    const ipv4 = this.v4(host);
    const ipv6 = this.v6(host);
    await must('ip', ['-n', netns, 'addr', 'add', `${ipv4}/24`, 'dev', ifname]);
    await must('ip', ['-n', netns, '-6', 'addr', 'add', `${ipv6}/64`, 'dev', ifname, 'nodad']);
    await must('ip', ['-n', netns, 'link', 'set', ifname, 'up']);
    return { netns, path: `/var/run/netns/${netns}`, ifname, ipv4, ipv6 };
  }

  /** Two namespaces joined by a veth pair (the pod end named `ifname`). */
  async vethPair(podName: string, peerName: string, podHost: number, peerHost: number, ifname = 'eth0'): Promise<[Pod, Pod]> {
    const podNs = await this.netns(podName);
    const peerNs = await this.netns(peerName);
    await must('ip', ['-n', podNs, 'link', 'add', 'name', ifname, 'type', 'veth', 'peer', 'name', 'peer0', 'netns', peerNs]);
    return [await this.addressed(podNs, ifname, podHost), await this.addressed(peerNs, 'peer0', peerHost)];
  }

  async destroy(): Promise<void> {
    for (const name of this.namespaces.reverse()) await run('ip', ['netns', 'del', name]);
    this.namespaces.length = 0;
  }
}
