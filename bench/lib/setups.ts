/**
 * The three things compared: tcqos on a macvlan pod, tcqos on a veth (ptp) pod, and the reference
 * plugin on the same veth pod. Each pod has two unshaped peers on its own network.
 */
import type { Attachment, Bed } from './bed.ts';
import type { Endpoint } from './flow.ts';
import type { PluginName } from './plugins.ts';

export type SetupId = 'tcqos-macvlan' | 'tcqos-veth' | 'ref-veth';

export interface Setup {
  readonly id: SetupId;
  readonly plugin: PluginName;
  readonly pod: Attachment;
  readonly peers: readonly [Attachment, Attachment];
}

export interface Pods {
  readonly setups: readonly Setup[];
  /** The macvlan pod, kept for showing that the reference plugin refuses it. */
  readonly macvlanPod: Attachment;
}

export async function attachPods(bed: Bed): Promise<Pods> {
  const mpod = await bed.attach('macvlan', 'mpod');
  const mpeers = [await bed.attach('macvlan', 'mpeer1'), await bed.attach('macvlan', 'mpeer2')] as const;
  const vpod = await bed.attach('ptp', 'vpod');
  const vpeers = [await bed.attach('ptp', 'vpeer1'), await bed.attach('ptp', 'vpeer2')] as const;
  return {
    setups: [
      { id: 'tcqos-macvlan', plugin: 'tcqos', pod: mpod, peers: mpeers },
      { id: 'tcqos-veth', plugin: 'tcqos', pod: vpod, peers: vpeers },
      { id: 'ref-veth', plugin: 'bandwidth', pod: vpod, peers: vpeers },
    ],
    macvlanPod: mpod,
  };
}

export function endpoint(att: Attachment): Endpoint {
  return { netns: att.netns, address: att.address };
}

export const SETUP_LABELS: Record<SetupId, string> = {
  'tcqos-macvlan': 'tcqos, macvlan',
  'tcqos-veth': 'tcqos, veth (ptp)',
  'ref-veth': 'reference, veth (ptp)',
};
