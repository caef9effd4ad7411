/**
 * Metrics per BandwidthPolicy, on this node (tcqos_policy_*): the pods it selects and shapes, whether
 * its current spec is refused, and refusals by reason. Series of a deleted policy are removed.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export type PolicyRefusal = 'invalid' | 'not_admitted';

export class PolicyMetrics {
  readonly selected: Gauge<'namespace' | 'policy'>;
  readonly shaped: Gauge<'namespace' | 'policy'>;
  readonly invalid: Gauge<'namespace' | 'policy'>;
  readonly refusals: Counter<'namespace' | 'policy' | 'reason'>;
  readonly policies: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    const labelNames = ['namespace', 'policy'] as const;
    this.selected = new Gauge({ name: 'tcqos_policy_selected_pods', help: 'Pods of this node the BandwidthPolicy selects', labelNames, registers });
    this.shaped = new Gauge({ name: 'tcqos_policy_shaped_pods', help: 'Pods of this node with an attachment whose policy in force comes from the BandwidthPolicy', labelNames, registers });
    this.invalid = new Gauge({ name: 'tcqos_policy_invalid', help: '1 while the BandwidthPolicy\'s current spec is refused (its last valid spec stays in force)', labelNames, registers });
    this.refusals = new Counter({
      name: 'tcqos_policy_refusals_total',
      help: 'BandwidthPolicy changes refused on this node, by reason (invalid: the spec; not_admitted: an uplink cannot admit it)',
      labelNames: ['namespace', 'policy', 'reason'],
      registers,
    });
    this.policies = new Gauge({ name: 'tcqos_policy_count', help: 'BandwidthPolicies the agent knows (every namespace)', registers });
  }

  set(key: string, selected: number, shaped: number, invalid: boolean): void {
    const labels = labelsOf(key);
    this.selected.set(labels, selected);
    this.shaped.set(labels, shaped);
    this.invalid.set(labels, invalid ? 1 : 0);
  }

  refused(key: string, reason: PolicyRefusal): void {
    this.refusals.inc({ ...labelsOf(key), reason });
  }

  remove(key: string): void {
    const labels = labelsOf(key);
    for (const gauge of [this.selected, this.shaped, this.invalid]) gauge.remove(labels);
    for (const reason of ['invalid', 'not_admitted'] as const) this.refusals.remove({ ...labels, reason });
  }
}

function labelsOf(key: string): { namespace: string; policy: string } {
  const [namespace = '', policy = ''] = key.split('/');
  return { namespace, policy };
}
