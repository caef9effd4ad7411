/**
 * The share of this VM's CPU time its host took (the "steal" column of /proc/stat), for the logs of
 * rate measurements: on this machine a shaper's sustained rate drops with it (a 100 Mbit/s class
 * measured 80-85 Mbit/s over seconds with 15-30% steal, 99-100 with none).
 */
import { readFileSync } from 'node:fs';

export interface CpuTimes {
  readonly total: number;
  readonly steal: number;
}

export function cpuTimes(): CpuTimes {
  // cpu  user nice system idle iowait irq softirq steal guest guest_nice
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  return { total: fields.reduce((sum, ticks) => sum + ticks, 0), steal: fields[7] ?? 0 };
}

export function stolenPercent(before: CpuTimes, after: CpuTimes): number {
  const total = after.total - before.total;
  return total > 0 ? (100 * (after.steal - before.steal)) / total : 0;
}
