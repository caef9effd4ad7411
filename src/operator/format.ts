/** Output for people: rates and sizes in human units, columns aligned (numbers to the right), one row order. */
import type { PodIdentity } from '../state/record.ts';

function scaled(value: number, units: readonly string[], base: number): string {
  let unit = 0;
  let amount = value;
  while (Math.abs(amount) >= base && unit < units.length - 1) {
    amount /= base;
    unit++;
  }
  const digits = unit === 0 || amount >= 100 ? 0 : amount >= 10 ? 1 : 2;
  return `${Number(amount.toFixed(digits))} ${units[unit]}`;
}

/** 40000000 -> "40 Mbit/s" (decimal prefixes, as rates are configured). */
export function humanRate(bitsPerSecond: number): string {
  return scaled(bitsPerSecond, ['bit/s', 'kbit/s', 'Mbit/s', 'Gbit/s', 'Tbit/s'], 1000);
}

/** 1234567 -> "1.23 MB". */
export function humanBytes(bytes: number): string {
  return scaled(bytes, ['B', 'kB', 'MB', 'GB', 'TB', 'PB'], 1000);
}

/** A column's title; `right` for numbers, which line up on their last digit. */
export type Column = string | { readonly title: string; readonly right: true };

/** A column of numbers. */
export const right = (title: string): Column => ({ title, right: true });

/** Rows under a header, each column as wide as its widest cell. */
export function table(columns: readonly Column[], rows: ReadonlyArray<readonly string[]>): string {
  const titles = columns.map((column) => (typeof column === 'string' ? column : column.title));
  const widths = titles.map((title, at) => Math.max(title.length, ...rows.map((row) => (row[at] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, at) => (typeof columns[at] === 'object' ? cell.padStart(widths[at]!) : cell.padEnd(widths[at]!)))
      .join('  ')
      .trimEnd();
  return [line(titles), ...rows.map(line)].join('\n') + '\n';
}

/** What identifies an attachment to people: its pod (when known), container id and interface. */
export interface AttachmentKey {
  readonly containerId: string;
  readonly ifname: string;
  readonly pod?: PodIdentity;
}

/**
 * The one order of attachments in every view (list, stats, top): by pod namespace and name, those
 * without a pod last, then by container id and interface.
 */
export function byAttachment(a: AttachmentKey, b: AttachmentKey): number {
  const pod = (key: AttachmentKey) => (key.pod ? `${key.pod.namespace}/${key.pod.name}` : undefined);
  const [pa, pb] = [pod(a), pod(b)];
  if (pa !== pb) return pa === undefined ? 1 : pb === undefined ? -1 : pa < pb ? -1 : 1;
  if (a.containerId !== b.containerId) return a.containerId < b.containerId ? -1 : 1;
  return a.ifname < b.ifname ? -1 : a.ifname > b.ifname ? 1 : 0;
}

/** "3f2a9c01d2e4 default/web-1": the short container id and the pod. */
export function attachmentLabel(key: AttachmentKey): string {
  return `${key.containerId.slice(0, 12)}${key.pod ? ` ${key.pod.namespace}/${key.pod.name}` : ''}`;
}
