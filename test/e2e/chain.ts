/**
 * What the e2e suites share: a libcni driver run from inside a throwaway runner namespace, conflists
 * that chain the reference plugins (macvlan or ptp, with host-local IPAM) before tcqos, and readers
 * for the tc state a chain leaves in the pod.
 *
 * Safety: the driver (and so every plugin it execs) runs under `ip netns exec <runner>`, so the
 * macvlan master and ptp's host-side veths live in the runner namespace, never in the host's.
 * host-local's dataDir and libcni's cache dir sit in a per-file temp directory, removed at the end.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, inject } from 'vitest';
import { ifbName } from '../../src/tc/handles.ts';
import { goodputMbit, type Flow } from '../helpers/iperf.ts';
import { TCQOS_BINARY } from '../helpers/plugin.ts';
import { must, run } from '../helpers/run.ts';
import type { Testbed } from '../helpers/testbed.ts';

export type CniCommand = 'add' | 'check' | 'del';

export interface CniError {
  readonly code: number;
  readonly msg: string;
  readonly details?: string;
}

export interface DriverRun {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  /** The chain's final result (ADD only), as libcni prints it. */
  readonly result: Record<string, unknown> | undefined;
  /** The CNI error a plugin returned, when one did (libcni's own errors are plain text on stderr). */
  readonly error: CniError | undefined;
}

/** containerd's burst for pods with the Kubernetes bandwidth annotations: 2^32-1 bits (512 MiB). */
export const CONTAINERD_BURST_BITS = 2 ** 32 - 1;
/** CRI-O's: 2^35-9 bits (4 GiB). */
export const CRIO_BURST_BITS = 2 ** 35 - 9;

/** A per-file libcni environment: plugin dir, host-local data dir, result cache, conflists. */
export class Driver {
  readonly root: string;
  readonly dataDir: string;
  readonly cacheDir: string;
  readonly pluginDir: string;
  /** The namespace the driver (and every plugin) runs in. */
  readonly runner: string;
  readonly binary: string;
  private files = 0;

  constructor(runner: string, binary: string = inject('cnidriver')) {
    this.runner = runner;
    this.binary = binary;
    this.root = mkdtempSync(join(tmpdir(), 'tqe-e2e-'));
    this.dataDir = join(this.root, 'ipam');
    this.cacheDir = join(this.root, 'cache');
    // tcqos is found by its type, like any plugin: a directory holding only it, after the reference ones.
    this.pluginDir = join(this.root, 'plugins');
    mkdirSync(this.pluginDir);
    symlinkSync(TCQOS_BINARY, join(this.pluginDir, 'tcqos'));
  }

  /** Writes a JSON file (conflist or capability args) into the temp dir; returns its path. */
  write(stem: string, content: object): string {
    const path = join(this.root, `${stem}-${this.files++}.json`);
    writeFileSync(path, JSON.stringify(content, null, 2));
    return path;
  }

  /**
   * `cnidriver <command> <conflist> <netns> <ifname> <containerId>` inside the runner namespace, with
   * the environment a runtime would give it and nothing of the test process's (NODE_OPTIONS!).
   */
  async call(
    command: CniCommand,
    conflist: string,
    netnsPath: string,
    ifname: string,
    containerId: string,
    capabilityArgs?: object,
  ): Promise<DriverRun> {
    const env = [
      'PATH=/usr/sbin:/usr/bin:/sbin:/bin',
      `CNI_PATH=/usr/lib/cni:${this.pluginDir}`,
      `CNI_CACHE_DIR=${this.cacheDir}`,
      ...(capabilityArgs ? [`CAP_ARGS=${this.write('cap-args', capabilityArgs)}`] : []),
    ];
    const ran = await run(
      'ip',
      ['netns', 'exec', this.runner, 'env', '-i', ...env, this.binary, command, conflist, netnsPath, ifname, containerId],
      { timeoutMs: 90_000 },
    );
    return {
      ...ran,
      result: command === 'add' && ran.exitCode === 0 ? (JSON.parse(ran.stdout) as Record<string, unknown>) : undefined,
      error: ran.exitCode === 0 ? undefined : pluginError(ran.stderr),
    };
  }

  /** Like call, but fails the test (showing stderr) unless the driver exits 0. */
  async must(...args: Parameters<Driver['call']>): Promise<DriverRun> {
    const ran = await this.call(...args);
    expect(ran.exitCode, `cnidriver ${args[0]} ${args[3]} failed: ${ran.stderr}`).toBe(0);
    return ran;
  }

  /** Addresses host-local holds for a network (one file per address in dataDir/<network>/). */
  allocated(network: string): string[] {
    try {
      return readdirSync(join(this.dataDir, network))
        .filter((name) => name !== 'lock' && !name.startsWith('last_reserved_ip'))
        .sort();
    } catch {
      return [];
    }
  }

  /** libcni's cached results (one per network/container/ifname that ADD succeeded for and DEL did not remove). */
  cachedResults(): string[] {
    try {
      return readdirSync(join(this.cacheDir, 'results')).sort();
    } catch {
      return [];
    }
  }

  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }

  /** macvlan in bridge mode on `master` (a link in the runner namespace), host-local in 198.18.<octet>.0/24. */
  macvlan(master: string, octet: number, ipv6Subnet?: string): object {
    const v4 = [{ subnet: `198.18.${octet}.0/24`, rangeStart: `198.18.${octet}.10`, rangeEnd: `198.18.${octet}.99` }];
    return {
      type: 'macvlan',
      master,
      mode: 'bridge',
      ipam: { type: 'host-local', dataDir: this.dataDir, ranges: ipv6Subnet ? [v4, [{ subnet: ipv6Subnet }]] : [v4] },
    };
  }

  /** ptp (veth pair, host side in the runner namespace at 198.18.<octet>.1/32), host-local, no masquerade. */
  ptp(octet: number): object {
    return {
      type: 'ptp',
      ipMasq: false,
      ipam: {
        type: 'host-local',
        dataDir: this.dataDir,
        ranges: [[{ subnet: `198.18.${octet}.0/24`, rangeStart: `198.18.${octet}.10`, rangeEnd: `198.18.${octet}.99`, gateway: `198.18.${octet}.1` }]],
      },
    };
  }
}

function pluginError(stderr: string): CniError | undefined {
  const lines = stderr.trim().split('\n').reverse();
  for (const line of lines) {
    try {
      const parsed = JSON.parse(line) as Partial<CniError> & { level?: number };
      if (typeof parsed.code === 'number' && typeof parsed.msg === 'string' && parsed.level === undefined) return parsed as CniError;
    } catch {
      // a log line or libcni's own text
    }
  }
  return undefined;
}

export function conflist(cniVersion: string, name: string, plugins: readonly object[]): object {
  return { cniVersion, name, plugins };
}

/** tcqos's entry in a conflist; `runtimeBandwidth` declares the `bandwidth` capability. */
export function tcqos(settings: object, runtimeBandwidth = false): object {
  return { type: 'tcqos', ...(runtimeBandwidth ? { capabilities: { bandwidth: true } } : {}), ...settings };
}

/** The runtime args a CRI runtime derives from kubernetes.io/ingress-bandwidth / egress-bandwidth. */
export function bandwidthArgs(ingressRate: number, egressRate: number, burstBits: number): object {
  return { bandwidth: { ingressRate, ingressBurst: burstBits, egressRate, egressBurst: burstBits } };
}

export function netnsPath(netns: string): string {
  return `/var/run/netns/${netns}`;
}

/**
 * A macvlan peer (bridge mode child of `master` in the hub/runner namespace) in its own namespace,
 * IPv4 only, so iperf3 has something to talk to on the pod's L2 segment.
 */
export async function macvlanPeer(bed: Testbed, hub: string, master: string, name: string, address: string): Promise<string> {
  const netns = await bed.netns(name);
  const temp = `tqp${name}`.slice(0, 15);
  await must('ip', ['-n', hub, 'link', 'add', 'link', master, 'name', temp, 'type', 'macvlan', 'mode', 'bridge']);
  await must('ip', ['-n', hub, 'link', 'set', temp, 'netns', netns]);
  await must('ip', ['-n', netns, 'link', 'set', temp, 'name', 'eth0']);
  await must('ip', ['-n', netns, 'addr', 'add', address, 'dev', 'eth0']);
  await must('ip', ['-n', netns, 'link', 'set', 'eth0', 'up']);
  return netns;
}

// ---- tc state, read with tc itself (not through tcqos) ----

export interface HtbClass {
  readonly id: string;
  readonly parent: string | undefined;
  /** bits per second */
  readonly rate: number;
  readonly ceil: number;
  /** bytes */
  readonly burst: number;
  readonly cburst: number;
}

const RATE_SCALE: Record<string, number> = { '': 1, K: 1e3, M: 1e6, G: 1e9 };
const SIZE_SCALE: Record<string, number> = { b: 1, Kb: 1024, Mb: 1024 ** 2, Gb: 1024 ** 3 };

function printedRate(text: string | undefined): number {
  const found = /^(\d+(?:\.\d+)?)([KMG]?)bit$/.exec(text ?? '');
  if (!found) throw new Error(`cannot read tc rate "${text}"`);
  return Number(found[1]) * RATE_SCALE[found[2]!]!;
}

function printedSize(text: string | undefined): number {
  const found = /^(\d+(?:\.\d+)?)(b|Kb|Mb|Gb)$/.exec(text ?? '');
  if (!found) throw new Error(`cannot read tc size "${text}"`);
  return Math.round(Number(found[1]) * SIZE_SCALE[found[2]!]!);
}

/** `tc class show dev DEV` (iproute2 6.1 prints HTB classes as text even with -j). */
export async function htbClasses(netns: string, dev: string): Promise<HtbClass[]> {
  const text = await must('ip', ['netns', 'exec', netns, 'tc', 'class', 'show', 'dev', dev]);
  return text
    .split('\n')
    .filter((line) => line.startsWith('class htb '))
    .map((line) => {
      const words = line.trim().split(/\s+/);
      const after = (key: string): string | undefined => {
        const at = words.indexOf(key);
        return at >= 0 ? words[at + 1] : undefined;
      };
      return {
        id: words[2]!,
        parent: after('parent'),
        rate: printedRate(after('rate')),
        ceil: printedRate(after('ceil')),
        burst: printedSize(after('burst')),
        cburst: printedSize(after('cburst')),
      };
    })
    .sort((a, b) => a.id.localeCompare(b.id));
}

/** "dev:kind:handle" of the root qdisc of `dev`. */
export async function rootQdisc(netns: string, dev: string): Promise<string> {
  const qdiscs = JSON.parse(await must('ip', ['netns', 'exec', netns, 'tc', '-j', 'qdisc', 'show', 'dev', dev])) as Array<{
    kind: string;
    handle: string;
    root?: boolean;
  }>;
  const root = qdiscs.find((q) => q.root);
  return root ? `${root.kind}:${root.handle}` : 'none';
}

/** The device the ingress qdisc of `dev` redirects every packet to (tcqos's ifb), if any. */
export async function ingressRedirect(netns: string, dev: string): Promise<string | undefined> {
  const shown = await run('ip', ['netns', 'exec', netns, 'tc', 'filter', 'show', 'dev', dev, 'ingress']);
  return /Redirect to device (\S+?)\)/.exec(shown.stdout)?.[1];
}

/** Names and kinds of the links in a namespace, e.g. ["eth0:macvlan", "lo:", "tcq…:ifb"]. */
export async function links(netns: string): Promise<string[]> {
  const shown = JSON.parse(await must('ip', ['-n', netns, '-j', '-d', 'link', 'show'])) as Array<{
    ifname: string;
    linkinfo?: { info_kind?: string };
  }>;
  return shown.map((link) => `${link.ifname}:${link.linkinfo?.info_kind ?? ''}`).sort();
}

/** Asserts a value within `tolerance` (fraction) of `expected`. */
export function expectNear(actual: number, expected: number, tolerance: number, what: string): void {
  expect(Math.abs(actual - expected), `${what}: ${actual}, expected ${expected} ±${tolerance * 100}%`).toBeLessThanOrEqual(expected * tolerance);
}

/**
 * Receiver-side goodput of the first second of a fresh TCP flow (nothing omitted): what a bucket
 * full of burst lets through before the rate takes hold.
 */
export function firstSecondMbit(flow: Omit<Flow, 'seconds' | 'omitSeconds'>): Promise<number> {
  return goodputMbit({ ...flow, seconds: 1, omitSeconds: 0 });
}

/**
 * The class of a flat limit: tcqos installs the total at :1 with one class under it, both at the
 * limit's rate, ceil and bucket. Checks that shape and returns the class.
 */
export async function flatClass(netns: string, dev: string): Promise<HtbClass> {
  const [total, only, ...more] = await htbClasses(netns, dev);
  expect(more, `${dev} has one class under the total`).toEqual([]);
  expect(total!.id).toBe('7c05:1');
  expect(only!.parent).toBe('7c05:1');
  expect({ rate: only!.rate, ceil: only!.ceil, burst: only!.burst }).toEqual({ rate: total!.rate, ceil: total!.ceil, burst: total!.burst });
  return only!;
}

/**
 * Where tcqos shaped an attachment a chain made, and which device carries each direction's HTB:
 * a ptp (veth) pod on the host end of its veth, in the runner (its egress on the ifb fed from the
 * host end's ingress, its ingress at the host end's root); a macvlan pod inside its own netns.
 */
export interface ShapedSite {
  readonly netns: string;
  readonly egress: string;
  readonly ingress: string;
  /** The interface whose ingress is redirected to the ifb. */
  readonly redirectedFrom: string;
}

export function shapedSite(result: Record<string, unknown>, runner: string, pod: string, ifname = 'eth0'): ShapedSite {
  const host = ((result['interfaces'] as Array<{ name: string; sandbox?: string }> | undefined) ?? []).find((i) => !i.sandbox && i.name.startsWith('veth'));
  if (host) return { netns: runner, egress: ifbName(host.name), ingress: host.name, redirectedFrom: host.name };
  return { netns: pod, egress: ifname, ingress: ifbName(ifname), redirectedFrom: ifname };
}
