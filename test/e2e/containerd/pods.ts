/**
 * Pod sandboxes as the tests see them: run through the CRI like the kubelet does, and given a name
 * in /var/run/netns (`ip netns attach`) so the shared helpers (tc readers, iperf3) work on them
 * unchanged. The name is one more reference to the pod's namespace: removePod drops it before
 * asking containerd to remove the sandbox, so "the namespace is gone" stays checkable.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { must, run } from '../../helpers/run.ts';
import type { PodRequest, SandboxStatus } from './cri.ts';
import type { ContainerdNode } from './node.ts';

export interface Pod {
  readonly id: string;
  readonly name: string;
  readonly ip: string;
  /** containerd's bind mount of the pod's netns (under its state dir). */
  readonly netnsPath: string;
  /** The name this suite gave the same namespace, for `ip netns exec` / `ip -n`. */
  readonly netns: string;
  /** The namespace's identity, e.g. "net:[4026532890]": still findable after every path to it is gone. */
  readonly netnsId: string;
}

/** Time allowed for stopping and removing what a failed test left, before the forced teardown. */
const CLEANUP_BUDGET_MS = 30_000;

export class Pods {
  private readonly node: ContainerdNode;
  private readonly prefix: string;
  private readonly sandboxes = new Set<string>();
  private readonly names = new Set<string>();

  /** `prefix`: the test file's netns prefix (its Testbed's), so a crashed run's names are swept too. */
  constructor(node: ContainerdNode, prefix: string) {
    this.node = node;
    this.prefix = prefix;
  }

  /** RunPodSandbox; fails (with containerd's message) as the kubelet would see it. */
  async run(request: PodRequest): Promise<Pod> {
    const id = await this.node.cri.runPodSandbox(request, this.node.placement);
    this.sandboxes.add(id);
    const status = await this.node.cri.podSandboxStatus(id);
    return this.named(request.name, status);
  }

  private async named(name: string, status: SandboxStatus): Promise<Pod> {
    const netns = `${this.prefix}-${name}`;
    const netnsId = readlinkSync(`/proc/${status.pid}/ns/net`);
    await must('ip', ['netns', 'attach', netns, String(status.pid)]);
    this.names.add(netns);
    return { id: status.id, name, ip: status.ip, netnsPath: status.netnsPath, netns, netnsId };
  }

  /** StopPodSandbox: the runtime runs CNI DEL; the pod's name for its namespace stays. */
  async stop(pod: Pod): Promise<void> {
    await this.node.cri.stopPodSandbox(pod.id);
  }

  /** Drops the suite's name for the namespace, then RemovePodSandbox. */
  async remove(pod: Pod): Promise<void> {
    await this.dropName(pod.netns);
    await this.node.cri.removePodSandbox(pod.id);
    this.sandboxes.delete(pod.id);
  }

  private async dropName(netns: string): Promise<void> {
    await run('ip', ['netns', 'del', netns]);
    this.names.delete(netns);
  }

  /** Stops and removes what tests left (bounded: the node's forced teardown follows anyway). */
  async cleanup(): Promise<void> {
    for (const name of [...this.names]) await this.dropName(name);
    const graceful = (async () => {
      for (const id of this.sandboxes) {
        await this.node.cri.stopPodSandbox(id).catch(() => undefined);
        await this.node.cri.removePodSandbox(id).catch(() => undefined);
      }
    })();
    await Promise.race([graceful, sleep(CLEANUP_BUDGET_MS)]);
    this.sandboxes.clear();
  }
}

/** Whether any process or mount (in this mount namespace) still holds the network namespace `id`. */
export function netnsHeld(id: string): boolean {
  for (const pid of readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
    try {
      if (readlinkSync(`/proc/${pid}/ns/net`) === id) return true;
    } catch {
      // gone, or a kernel thread
    }
  }
  return readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${id} `);
}
