/**
 * The shape of `collectStats`' result, as agreed in the contract for src/attachment (not written yet).
 * Only this file names it for src/metrics: when src/attachment exports AttachmentStats, this file
 * becomes a re-export of it.
 */
export interface ClassStats {
  readonly name: string; readonly classId: string;
  readonly rate: number; readonly ceil: number;
  readonly bytes: number; readonly packets: number; readonly drops: number; readonly overlimits: number;
  readonly backlogBytes: number;
}
export interface DirectionStats {
  readonly direction: 'egress' | 'ingress'; readonly device: string;
  readonly rate: number; readonly ceil: number;
  readonly bytes: number; readonly packets: number; readonly drops: number; readonly overlimits: number; readonly backlogBytes: number;
  readonly classes: readonly ClassStats[];
}
export interface AttachmentStats {
  readonly containerId: string; readonly ifname: string; readonly netns: string; readonly network: string;
  readonly pod?: { readonly namespace: string; readonly name: string; readonly uid?: string };
  readonly directions: readonly DirectionStats[];
}
