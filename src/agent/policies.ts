/**
 * The BandwidthPolicies on this node's side: which spec of each policy is in force, which of the
 * node's pods each selects and shapes, and what a change of either re-enqueues.
 *
 * - A policy is checked when its spec changes (metadata.generation; a status write is no change).
 *   A valid spec goes in force; a refused one is reported once (a Warning Event naming the field,
 *   tcqos_policy_invalid) and its last valid spec stays in force, so the running shaping is kept.
 * - A policy created, edited or deleted re-enqueues exactly the pods it selected at their last
 *   convergence and those it selects now; a pod whose labels changed is enqueued by its own watch.
 * - Converging a pod first writes its entry for the plugin (src/policy/entries.ts: the policies
 *   selecting it, so its next sandbox is shaped from its first packet), then resolves per
 *   attachment network (src/policy/resolve.ts); what each attachment came to feeds the status
 *   (policy-status.ts) and metrics (policy-metrics.ts). A pod gone from the node loses its entry.
 */
import { ConfigError } from '../config/errors.ts';
import type { Logger } from '../log.ts';
import { PolicyEntries } from '../policy/entries.ts';
import { checkPolicy, type BandwidthPolicy } from '../policy/object.ts';
import { selecting } from '../policy/resolve.ts';
import { describeSelector, selects } from '../policy/selector.ts';
import type { PolicyView } from './policy-api.ts';
import type { PolicyEvents } from './policy-events.ts';
import type { PolicyMetrics, PolicyRefusal } from './policy-metrics.ts';
import type { OwnEntry } from './policy-status.ts';
import type { PodView } from './pods.ts';

interface Cache<T> {
  get(key: string): T | undefined;
  keys(): string[];
}

export class NodePolicies {
  private readonly cache: Cache<PolicyView>;
  private readonly pods: Cache<PodView>;
  private readonly entries: PolicyEntries;
  private readonly enqueue: (podKey: string) => void;
  private readonly touch: (policyKey: string) => void;
  private readonly events: PolicyEvents;
  private readonly metrics: PolicyMetrics;
  private readonly node: string;
  private readonly log: Logger;
  /** The spec in force per policy: its last valid one. */
  private readonly inForce = new Map<string, BandwidthPolicy>();
  /** The generation last looked at, per policy. */
  private readonly seen = new Map<string, number>();
  /** Why the policy's current spec is refused. */
  private readonly invalid = new Map<string, string>();
  /** Why this node cannot apply the policy to some attachment (an uplink cannot admit it, it does not fit a cap). */
  private readonly refused = new Map<string, string>();
  /** Policy -> pods of this node it selected / shaped at their last convergence. */
  private readonly selectedBy = new Map<string, Set<string>>();
  private readonly shapedBy = new Map<string, Set<string>>();
  /** Pod -> the entry last written for it (its JSON), to write only changes. */
  private readonly written = new Map<string, string>();

  constructor(options: {
    cache: Cache<PolicyView>;
    pods: Cache<PodView>;
    entries: PolicyEntries;
    enqueue: (podKey: string) => void;
    touch: (policyKey: string) => void;
    events: PolicyEvents;
    metrics: PolicyMetrics;
    node: string;
    log: Logger;
  }) {
    this.cache = options.cache;
    this.pods = options.pods;
    this.entries = options.entries;
    this.enqueue = options.enqueue;
    this.touch = options.touch;
    this.events = options.events;
    this.metrics = options.metrics;
    this.node = options.node;
    this.log = options.log;
  }

  /** A policy came, went or changed in the cache (the informer's handler). */
  changed(key: string): void {
    const view = this.cache.get(key);
    const before = this.inForce.get(key);
    const affected = new Set(this.selectedBy.get(key));
    if (!view) {
      this.inForce.delete(key);
      this.seen.delete(key);
      this.invalid.delete(key);
      this.refused.delete(key);
      this.metrics.remove(key);
      this.log.info({ policy: key, pods: affected.size }, 'BandwidthPolicy deleted');
    } else {
      // its status (an agent's write) changed: our entry may need writing again, the spec did not change
      this.touch(key);
      if (this.seen.get(key) === view.generation) return;
      this.seen.set(key, view.generation);
      this.refused.delete(key);
      try {
        const policy = checkPolicy(view);
        this.inForce.set(key, policy);
        this.invalid.delete(key);
        this.log.info({ policy: key, generation: view.generation, selector: describeSelector(policy.selector), priority: policy.priority, network: policy.network }, 'BandwidthPolicy in force');
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        this.invalid.set(key, error.message);
        this.metrics.refused(key, 'invalid');
        this.log.warn({ policy: key, generation: view.generation, error: error.message }, 'refused the BandwidthPolicy; its last valid spec stays in force');
        void this.events.post(view, 'invalid', error.message);
      }
    }
    const now = this.inForce.get(key);
    if (now === before) {
      this.updateMetrics(key);
      return;
    }
    if (now) for (const podKey of this.pods.keys()) if (this.selectsPod(now, this.pods.get(podKey))) affected.add(podKey);
    for (const podKey of affected) this.enqueue(podKey);
    this.updateMetrics(key);
  }

  /**
   * The policies in force that select the pod, in precedence order; its entry for the plugin is
   * written when they changed, and the status learns what each selects.
   */
  select(podKey: string, pod: PodView): BandwidthPolicy[] {
    const found = selecting(this.inForce.values(), pod);
    this.regroup(this.selectedBy, podKey, found.map((policy) => policy.key));
    const text = JSON.stringify(found.map(({ key, network, priority, trees }) => ({ key, ...(network !== undefined ? { network } : {}), priority, trees })));
    if (this.written.get(podKey) !== text) {
      try {
        if (found.length) {
          this.entries.write({ version: 1, namespace: pod.namespace, name: pod.name, ...(pod.uid ? { uid: pod.uid } : {}), policies: JSON.parse(text) as [] });
        } else {
          this.entries.remove(pod);
        }
        this.written.set(podKey, text);
      } catch (error) {
        this.log.error({ pod: podKey, error: (error as Error).message }, 'could not write the BandwidthPolicy entry of the pod (its next sandbox starts without its policy; the agent applies it after the ADD)');
      }
    }
    return found;
  }

  /** The policies shaping one of the pod's attachments now (names as in records: "namespace/name"). */
  shaping(podKey: string, policyKeys: readonly string[]): void {
    this.regroup(this.shapedBy, podKey, policyKeys);
  }

  /** This node cannot apply the policy to an attachment: reported on the policy (once per change), in its status and metrics. */
  async refuse(policyKey: string, reason: PolicyRefusal, message: string): Promise<void> {
    const view = this.cache.get(policyKey);
    if (!view) return;
    const known = this.refused.get(policyKey) === message;
    this.refused.set(policyKey, message);
    this.touch(policyKey);
    if (known) return;
    this.metrics.refused(policyKey, reason);
    this.log.warn({ policy: policyKey, error: message }, reason === 'not_admitted' ? 'an uplink cannot admit the BandwidthPolicy; the running shaping is kept' : 'the BandwidthPolicy cannot be applied on this node; the running shaping is kept');
    await this.events.post(view, reason, message, this.node);
  }

  /** The pod left the node: its entry goes, and it counts for no policy. */
  forget(podKey: string, pod: { readonly namespace: string; readonly name: string }): void {
    this.regroup(this.selectedBy, podKey, []);
    this.regroup(this.shapedBy, podKey, []);
    this.entries.remove(pod);
    this.written.delete(podKey);
  }

  /** Entries of pods this node no longer has (the agent was down when they left): removed once the caches are synced. */
  dropStaleEntries(): number {
    let dropped = 0;
    for (const pod of this.entries.pods()) {
      if (this.pods.get(`${pod.namespace}/${pod.name}`)) continue;
      this.entries.remove(pod);
      dropped++;
    }
    return dropped;
  }

  /** What this node says of the policy in its status entry. */
  entryOf(key: string): OwnEntry | undefined {
    const policy = this.inForce.get(key);
    const view = this.cache.get(key);
    if (!view) return undefined;
    const selected = this.selectedBy.get(key)?.size ?? 0;
    const problem = this.invalid.get(key) ?? this.refused.get(key);
    if (!selected && !problem) return undefined;
    return {
      selector: policy ? describeSelector(policy.selector) : '',
      observedGeneration: view.generation,
      selectedPods: selected,
      shapedPods: this.shapedBy.get(key)?.size ?? 0,
      ...(problem ? { problem } : {}),
    };
  }

  private selectsPod(policy: BandwidthPolicy, pod: PodView | undefined): boolean {
    return pod !== undefined && pod.namespace === policy.namespace && selects(policy.selector, pod.labels);
  }

  /** Moves the pod to exactly `keys` in `index`; policies whose set changed get their status written and metrics set. */
  private regroup(index: Map<string, Set<string>>, podKey: string, keys: readonly string[]): void {
    const wanted = new Set(keys);
    for (const [key, pods] of index) {
      if (wanted.has(key) || !pods.has(podKey)) continue;
      pods.delete(podKey);
      if (!pods.size) index.delete(key);
      this.changedCounts(key);
    }
    for (const key of wanted) {
      let pods = index.get(key);
      if (!pods) index.set(key, (pods = new Set()));
      if (pods.has(podKey)) continue;
      pods.add(podKey);
      this.changedCounts(key);
    }
  }

  private changedCounts(key: string): void {
    this.touch(key);
    this.updateMetrics(key);
  }

  private updateMetrics(key: string): void {
    if (!this.cache.get(key)) return;
    this.metrics.set(key, this.selectedBy.get(key)?.size ?? 0, this.shapedBy.get(key)?.size ?? 0, this.invalid.has(key));
    this.metrics.policies.set(this.cache.keys().length);
  }
}
