/**
 * `tcqos stats`: per attachment, direction and class, what is configured and what the kernel counted,
 * as a table for people, JSON for scripts, or the Prometheus text format (for node_exporter's
 * textfile collector with --output).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { collectStats, type AttachmentStats, type StatsFilter } from '../attachment/stats.ts';
import { type Subcommand } from '../cli/runner.ts';
import { UsageError } from '../cli/errors.ts';
import { registryFrom, STATE_DIR_HELP, STATE_DIR_OPTION, stringFlag } from './common.ts';
import { humanBytes, humanRate, table } from './format.ts';

const USAGE = `Usage: tcqos stats [--container ID] [--ifname IF] [--json | --prometheus [--output FILE]]
                   [--interval SECONDS] [--state-dir DIR]

Per attachment, direction and class: the configured rate and ceiling, and the kernel's counters
(bytes and packets sent, drops, overlimits, backlog). Bytes count frames on the wire, Ethernet
header included, as the rates do. The table and --json also show the current rate, measured over
--interval (default 1 s; 0 leaves it out).

  --container ID     only this container's attachments
  --ifname IF        only attachments on this interface
  --json             one JSON document (an array of attachments)
  --prometheus       the Prometheus text format (tcqos_class_*, tcqos_direction_* families)
  --output FILE      with --prometheus: write FILE atomically (for node_exporter's textfile collector,
                     whose directory only reads *.prom files) instead of standard output
  --interval SECONDS the window of the current rate (table and --json)
${STATE_DIR_HELP}

Exit status: 0 printed, 1 failed, 2 bad usage.
`;

/** Bits per second each class and direction sent between two readings. */
function currentRates(before: readonly AttachmentStats[], after: readonly AttachmentStats[], seconds: number): Map<string, number> {
  const rates = new Map<string, number>();
  const key = (a: AttachmentStats, direction: string, name: string) => `${a.containerId}\0${a.ifname}\0${direction}\0${name}`;
  const bytesBefore = new Map<string, number>();
  for (const a of before) {
    for (const d of a.directions) {
      bytesBefore.set(key(a, d.direction, ''), d.bytes);
      for (const c of d.classes) bytesBefore.set(key(a, d.direction, c.name), c.bytes);
    }
  }
  const rate = (k: string, bytes: number) => {
    const earlier = bytesBefore.get(k);
    if (earlier !== undefined && bytes >= earlier) rates.set(k, ((bytes - earlier) * 8) / seconds);
  };
  for (const a of after) {
    for (const d of a.directions) {
      rate(key(a, d.direction, ''), d.bytes);
      for (const c of d.classes) rate(key(a, d.direction, c.name), c.bytes);
    }
  }
  return rates;
}

function asTable(stats: readonly AttachmentStats[], rates: Map<string, number> | undefined): string {
  const rows: string[][] = [];
  const current = (a: AttachmentStats, direction: string, name: string) => {
    const value = rates?.get(`${a.containerId}\0${a.ifname}\0${direction}\0${name}`);
    return value === undefined ? '-' : humanRate(value);
  };
  for (const a of stats) {
    const who = `${a.containerId.slice(0, 12)}${a.pod ? ` ${a.pod.namespace}/${a.pod.name}` : ''}`;
    for (const d of a.directions) {
      const counters = (c: { bytes: number; packets: number; drops: number; overlimits: number; backlogBytes: number }) => [
        humanBytes(c.bytes),
        String(c.packets),
        String(c.drops),
        String(c.overlimits),
        humanBytes(c.backlogBytes),
      ];
      rows.push([who, a.ifname, d.direction, '(total)', humanRate(d.rate), humanRate(d.ceil), ...counters(d), current(a, d.direction, '')]);
      for (const c of d.classes) rows.push(['', '', '', c.name, humanRate(c.rate), humanRate(c.ceil), ...counters(c), current(a, d.direction, c.name)]);
    }
  }
  if (!rows.length) return 'no shaped attachments match\n';
  return table(['ATTACHMENT', 'IFACE', 'DIRECTION', 'CLASS', 'RATE', 'CEIL', 'SENT', 'PACKETS', 'DROPS', 'OVERLIMITS', 'BACKLOG', 'NOW'], rows);
}

function asJson(stats: readonly AttachmentStats[], rates: Map<string, number> | undefined): string {
  const withRates = stats.map((a) => ({
    ...a,
    directions: a.directions.map((d) => {
      const now = (name: string) => rates?.get(`${a.containerId}\0${a.ifname}\0${d.direction}\0${name}`);
      return { ...d, currentBitsPerSecond: now(''), classes: d.classes.map((c) => ({ ...c, currentBitsPerSecond: now(c.name) })) };
    }),
  }));
  return `${JSON.stringify(withRates, null, 2)}\n`;
}

export const statsCommand: Subcommand = {
  name: 'stats',
  summary: 'per-class counters: a table, JSON or Prometheus text',
  usage: USAGE,
  options: {
    container: { type: 'string' },
    ifname: { type: 'string' },
    json: { type: 'boolean' },
    prometheus: { type: 'boolean' },
    output: { type: 'string' },
    interval: { type: 'string' },
    ...STATE_DIR_OPTION,
  },
  async run(values, _positionals, io) {
    if (values['json'] && values['prometheus']) throw new UsageError('choose one of --json and --prometheus');
    const output = stringFlag(values, 'output');
    if (output && !values['prometheus']) throw new UsageError('--output goes with --prometheus');
    const interval = Number(stringFlag(values, 'interval') ?? '1');
    if (!Number.isFinite(interval) || interval < 0 || interval > 60) throw new UsageError('--interval takes seconds from 0 to 60');
    const registry = registryFrom(values, io);
    const filter: StatsFilter = {
      ...(stringFlag(values, 'container') ? { containerId: stringFlag(values, 'container')! } : {}),
      ...(stringFlag(values, 'ifname') ? { ifname: stringFlag(values, 'ifname')! } : {}),
    };
    if (values['prometheus']) {
      const { renderStats } = await import('../metrics/prometheus.ts');
      const text = await renderStats(await collectStats(registry, filter));
      if (output) {
        const { atomicWriteFile } = await import('../metrics/textfile.ts');
        await atomicWriteFile(output, text);
        if (!output.endsWith('.prom')) io.writeStderr(`tcqos stats: note: node_exporter's textfile collector reads only *.prom files\n`);
      } else {
        io.writeStdout(text);
      }
      return 0;
    }
    const first = await collectStats(registry, filter);
    let rates: Map<string, number> | undefined;
    let stats = first;
    if (interval > 0) {
      const started = process.hrtime.bigint();
      await sleep(interval * 1000);
      stats = await collectStats(registry, filter);
      rates = currentRates(first, stats, Number(process.hrtime.bigint() - started) / 1e9);
    }
    io.writeStdout(values['json'] ? asJson(stats, rates) : asTable(stats, rates));
    return 0;
  },
};
