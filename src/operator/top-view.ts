/**
 * What `tcqos top` shows, as text lines for a terminal of a given size. Pure: the command reads the
 * counters and the keys (src/operator/top.ts); this turns two readings into rows, sorts them and
 * draws them. One row per direction (its total) and per class: the current rate, a bar of it against
 * the ceiling with the guaranteed rate marked, drops and backlog.
 */
import type { AttachmentStats, ClassStats, DirectionStats } from '../attachment/stats.ts';
import { attachmentLabel, byAttachment, humanBytes, humanRate, right, table, type Column } from './format.ts';
import { rateKey } from './rates.ts';

export const SORT_KEYS = ['name', 'rate', 'use', 'drops', 'backlog'] as const;
export type SortKey = (typeof SORT_KEYS)[number];

/** The key that picks each sort order in the view. */
export const SORT_LETTERS: Readonly<Record<string, SortKey>> = { n: 'name', r: 'rate', u: 'use', d: 'drops', b: 'backlog' };

export interface TopRow {
  readonly attachment: AttachmentStats;
  readonly direction: DirectionStats;
  /** undefined: the direction's total. */
  readonly cls: ClassStats | undefined;
  /** bit/s now; undefined until there are two readings. */
  readonly now: number | undefined;
  /** Frames dropped per second now. */
  readonly dropsNow: number | undefined;
  /** Position in the order every view uses (attachment, direction, total first, classes as configured). */
  readonly order: number;
}

/** Rows of the latest reading, with rates from the one before (`seconds` earlier). */
export function topRows(previous: readonly AttachmentStats[] | undefined, latest: readonly AttachmentStats[], seconds: number): TopRow[] {
  const before = new Map<string, { bytes: number; drops: number }>();
  for (const a of previous ?? []) {
    for (const d of a.directions) {
      before.set(rateKey(a, d.direction, ''), d);
      for (const c of d.classes) before.set(rateKey(a, d.direction, c.name), c);
    }
  }
  const rows: TopRow[] = [];
  for (const attachment of [...latest].sort(byAttachment)) {
    for (const direction of attachment.directions) {
      for (const cls of [undefined, ...direction.classes]) {
        const figures = cls ?? direction;
        const was = before.get(rateKey(attachment, direction.direction, cls?.name ?? ''));
        const fresh = was !== undefined && seconds > 0 && figures.bytes >= was.bytes;
        rows.push({
          attachment,
          direction,
          cls,
          now: fresh ? ((figures.bytes - was.bytes) * 8) / seconds : undefined,
          dropsNow: fresh && figures.drops >= was.drops ? (figures.drops - was.drops) / seconds : undefined,
          order: rows.length,
        });
      }
    }
  }
  return rows;
}

const ceilOf = (row: TopRow) => (row.cls ?? row.direction).ceil;
const rateOf = (row: TopRow) => (row.cls ?? row.direction).rate;
const useOf = (row: TopRow) => (row.now === undefined ? -1 : row.now / ceilOf(row));

/** Largest first for the figures, the usual order for names; ties keep the usual order. */
export function sortRows(rows: readonly TopRow[], key: SortKey): TopRow[] {
  const value: Record<SortKey, (row: TopRow) => number> = {
    name: (row) => -row.order,
    rate: (row) => row.now ?? -1,
    use: useOf,
    drops: (row) => row.dropsNow ?? (row.cls ?? row.direction).drops / 1e12,
    backlog: (row) => (row.cls ?? row.direction).backlogBytes,
  };
  return [...rows].sort((a, b) => value[key](b) - value[key](a) || a.order - b.order);
}

/**
 * A bar of `now` against the ceiling, `width` cells inside brackets: "=" up to the current rate,
 * "|" where the guaranteed rate is (what the class may always send), "." for the rest.
 */
export function rateBar(now: number | undefined, rate: number, ceil: number, width: number): string {
  const cells = Array<string>(width).fill('.');
  const filled = now === undefined ? 0 : Math.min(width, Math.round((now / ceil) * width));
  for (let at = 0; at < filled; at++) cells[at] = '=';
  if (rate < ceil) cells[Math.min(width - 1, Math.max(0, Math.round((rate / ceil) * width) - 1))] = '|';
  return `[${cells.join('')}]`;
}

export interface TopScreen {
  readonly columns: number;
  readonly rows: number;
}

export interface TopState {
  readonly sort: SortKey;
  readonly intervalSeconds: number;
  /** When the latest reading was taken. */
  readonly at: Date;
  /** A line about attachments that could not be read, if any. */
  readonly problem?: string;
}

const BAR_WIDTH = 20;
const COLUMNS: readonly Column[] = ['ATTACHMENT', 'IFACE', 'DIR', 'CLASS', right('NOW'), 'NOW / CEIL (| = RATE)', right('USE'), right('RATE'), right('CEIL'), right('DROPS'), right('DROP/S'), right('BACKLOG')];

/** The whole screen: a header, the column titles and as many rows as fit, each cut to the width. */
export function renderTop(rows: readonly TopRow[], state: TopState, screen: TopScreen): string[] {
  const sorted = sortRows(rows, state.sort);
  const attachments = new Set(rows.map((row) => row.attachment)).size;
  const keys = Object.entries(SORT_LETTERS)
    .map(([letter, key]) => (key === state.sort ? `[${letter}] ${key}` : `${letter} ${key}`))
    .join('  ');
  const header = [
    `tcqos top  ${state.at.toISOString().slice(11, 19)}  ${attachments} attachment${attachments === 1 ? '' : 's'}, refresh ${state.intervalSeconds} s, sort: ${state.sort}`,
    `keys: ${keys}  q quit${state.problem ? `  |  ${state.problem}` : ''}`,
  ];
  // The header, a blank line and the column titles; the last line says what did not fit.
  const fits = Math.max(0, screen.rows - header.length - 2);
  const shown = sorted.slice(0, sorted.length > fits ? Math.max(0, fits - 1) : fits);
  const lines = table(
    COLUMNS,
    shown.map((row) => {
      const figures = row.cls ?? row.direction;
      const first = state.sort !== 'name' || !row.cls;
      return [
        first ? attachmentLabel(row.attachment) : '',
        first ? row.attachment.ifname : '',
        first ? row.direction.direction : '',
        row.cls?.name ?? '(total)',
        row.now === undefined ? '-' : humanRate(row.now),
        rateBar(row.now, rateOf(row), ceilOf(row), BAR_WIDTH),
        row.now === undefined ? '-' : `${Math.round((row.now / ceilOf(row)) * 100)}%`,
        humanRate(rateOf(row)),
        humanRate(ceilOf(row)),
        String(figures.drops),
        row.dropsNow === undefined ? '-' : String(Math.round(row.dropsNow)),
        humanBytes(figures.backlogBytes),
      ];
    }),
  ).trimEnd().split('\n');
  const more = sorted.length > shown.length ? [`... ${sorted.length - shown.length} more rows (a taller terminal shows them)`] : [];
  return [...header, '', ...lines, ...more].map((line) => line.slice(0, screen.columns));
}
