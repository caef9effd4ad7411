/**
 * The kernel's counters of an attachment's devices, in one process: `qdisc show` and `class show`
 * of every device named, through one tc batch (src/netns/show.ts).
 */
import type { AttachmentState } from '../tc/ownership.ts';
import type { ClassInfo, ObservedAttachment, QdiscInfo } from '../tc/types.ts';
import type { NetnsSession, ToolRun } from './session.ts';
import { classesOf, qdiscsOf, showAll, showScript, shownFrom, type ShowCommand, type Shown } from './show.ts';

/** One device's qdiscs and HTB classes, each with its counters. */
export interface DeviceCounters {
  readonly device: string;
  readonly qdiscs: readonly QdiscInfo[];
  /** HTB classes only (a tbf lists pseudo-classes of their own). */
  readonly classes: readonly ClassInfo[];
}

function countersCommands(devices: readonly string[]): ShowCommand[] {
  return devices.flatMap((dev): ShowCommand[] => [{ show: 'qdisc', dev }, { show: 'class', dev }]);
}

/** The batch for `devices`: two lines each, in this order (the reader depends on it). */
export function countersScript(devices: readonly string[]): string {
  return showScript(countersCommands(devices));
}

/** The counters of each of `devices` that exists (a missing one is absent from the map); one tc process. */
export async function readCounters(session: NetnsSession, devices: readonly string[]): Promise<Map<string, DeviceCounters>> {
  return byDevice(devices, await showAll(session, countersCommands(devices)));
}

/** Reads a run of `countersScript(devices)`. Pure: tested on captured output. */
export function countersFromBatch(devices: readonly string[], run: Pick<ToolRun, 'exitCode' | 'stdout' | 'stderr'>): Map<string, DeviceCounters> {
  return byDevice(devices, shownFrom(countersCommands(devices), run));
}

function byDevice(devices: readonly string[], shown: readonly Shown[]): Map<string, DeviceCounters> {
  const result = new Map<string, DeviceCounters>();
  devices.forEach((device, index) => {
    // a device whose qdiscs could not be listed is missing
    if (shown[2 * index] !== undefined) result.set(device, { device, qdiscs: qdiscsOf(shown[2 * index]), classes: classesOf(shown[2 * index + 1]) });
  });
  return result;
}

/** The counters a site reading already holds (qdiscs with their counters, tcqos's classes): no process. */
export function siteCounters(state: AttachmentState, observed: ObservedAttachment): Map<string, DeviceCounters> {
  const result = new Map<string, DeviceCounters>();
  for (const [device, tree] of [[state.ifname, observed.onInterface], [state.ifb, observed.onIfb]] as const) {
    const qdiscs = state.qdiscs.filter((qdisc) => qdisc.dev === device);
    if (qdiscs.length) result.set(device, { device, qdiscs, classes: tree.classes });
  }
  return result;
}
