/**
 * The benchmark's test bed: throwaway namespaces named `tqb-*`, one runner namespace that holds
 * every host-side device (the macvlan parent, ptp's host veths, the reference plugin's ifbs), and
 * pods attached by real CNI chains (macvlan or ptp + host-local) through the libcni driver.
 * Addresses come from 198.18.90.0/24 (macvlan), .91 (ptp) and .92 (scale).
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { must, run } from '../../test/helpers/run.ts';

export const PREFIX = 'tqb-';
export const RUNNER = `${PREFIX}run`;
/** The macvlan parent lives in the runner: a veth pair, as there is no dummy link here. */
export const MACVLAN_PARENT = 'tqbpar0';
/** run.sh copies dist/tcqos aside (BENCH_TCQOS) so a rebuild during the run cannot mix two versions. */
export const TCQOS_BINARY = process.env['BENCH_TCQOS'] || fileURLToPath(new URL('../../dist/tcqos', import.meta.url));
export const REFERENCE_BINARY = '/usr/lib/cni/bandwidth';
export const IFNAME = 'eth0';

export type Network = 'macvlan' | 'ptp' | 'scale';

const SUBNETS: Record<Network, string> = { macvlan: '198.18.90.0/24', ptp: '198.18.91.0/24', scale: '198.18.92.0/24' };

/** A pod attachment as the main plugin left it. */
export interface Attachment {
  readonly netns: string;
  readonly path: string;
  readonly network: Network;
  readonly containerId: string;
  readonly address: string;
  /** ptp only: the host side of the veth, in the runner. */
  readonly hostVeth: string | undefined;
  /** The main plugin's result: what libcni hands the next plugin as prevResult. */
  readonly prevResult: Record<string, unknown>;
}

interface ResultInterface {
  name: string;
  sandbox?: string;
}

export class Bed {
  readonly work: string;
  readonly cnidriver: string;
  readonly cniPath: string;
  /** tcqos's registry and locks for this run (TCQOS_STATE_DIR), so leftovers can be counted and /run is untouched. */
  readonly stateDir: string;
  private readonly created: string[] = [];

  constructor(work: string, cnidriver: string) {
    this.work = work;
    this.cnidriver = cnidriver;
    this.stateDir = `${work}/state`;
    const bin = `${work}/cni-bin`;
    mkdirSync(bin, { recursive: true });
    symlinkSync(TCQOS_BINARY, `${bin}/tcqos`);
    this.cniPath = `${bin}:/usr/lib/cni`;
    for (const network of Object.keys(SUBNETS) as Network[]) {
      writeFileSync(this.conflist(network), JSON.stringify(this.conflistFor(network)));
    }
  }

  conflist(network: Network): string {
    return `${this.work}/${network}.conflist`;
  }

  private conflistFor(network: Network): object {
    const ipam = { type: 'host-local', subnet: SUBNETS[network], dataDir: `${this.work}/ipam` };
    const main =
      network === 'macvlan'
        ? { type: 'macvlan', master: MACVLAN_PARENT, mode: 'bridge', ipam }
        : { type: 'ptp', ipMasq: false, mtu: 1500, ipam };
    return { cniVersion: '1.0.0', name: `tqb${network}`, plugins: [main] };
  }

  /** Removes every `tqb-` namespace an interrupted earlier run left (their links go with them). */
  static async removeLeftovers(): Promise<void> {
    const listed = await run('ip', ['netns', 'list']);
    for (const line of listed.stdout.split('\n')) {
      const name = line.split(' ')[0];
      if (name?.startsWith(PREFIX)) await run('ip', ['netns', 'del', name]);
    }
  }

  async netns(name: string): Promise<string> {
    const full = `${PREFIX}${name}`;
    await must('ip', ['netns', 'add', full]);
    this.created.push(full);
    await must('ip', ['-n', full, 'link', 'set', 'lo', 'up']);
    return full;
  }

  async runner(): Promise<void> {
    await this.netns('run');
    await must('ip', ['-n', RUNNER, 'link', 'add', MACVLAN_PARENT, 'type', 'veth', 'peer', 'name', 'tqbpar1']);
    await must('ip', ['-n', RUNNER, 'link', 'set', MACVLAN_PARENT, 'up']);
    await must('ip', ['-n', RUNNER, 'link', 'set', 'tqbpar1', 'up']);
  }

  /** Environment of a plugin or driver call, as libcni sets it (nothing inherited). */
  cniEnv(extra: Record<string, string> = {}): Record<string, string> {
    return { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', CNI_PATH: this.cniPath, ...extra };
  }

  /** A new pod namespace attached by the network's main plugin (no shaping yet). */
  async attach(network: Network, name: string): Promise<Attachment> {
    const netns = await this.netns(name);
    const path = `/var/run/netns/${netns}`;
    const containerId = `tqb-${name}`;
    const env = this.cniEnv({ CNI_CACHE_DIR: `${this.work}/cache` });
    const out = await must(
      'ip',
      ['netns', 'exec', RUNNER, 'env', '-i', ...envArgs(env), this.cnidriver, 'add', this.conflist(network), path, IFNAME, containerId],
      { timeoutMs: 30_000 },
    );
    const prevResult = JSON.parse(out) as { interfaces: ResultInterface[]; ips: Array<{ address: string }> };
    const address = prevResult.ips[0]!.address.split('/')[0]!;
    const hostVeth = prevResult.interfaces.find((i) => !i.sandbox)?.name;
    return { netns, path, network, containerId, address, hostVeth, prevResult };
  }

  async destroy(): Promise<void> {
    for (const name of this.created.reverse()) await run('ip', ['netns', 'del', name]);
    this.created.length = 0;
  }
}

export function envArgs(env: Record<string, string>): string[] {
  return Object.entries(env).map(([key, value]) => `${key}=${value}`);
}
