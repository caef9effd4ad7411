/**
 * `tcqos stats`: per attachment, direction and class, what is configured and what the kernel counted,
 * as a table for people, JSON for scripts, or the Prometheus text format (for node_exporter's
 * textfile collector with --output).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { readStats, type AttachmentStats, type StatsFilter, type StatsReading } from '../attachment/stats.ts';
import type { CliIo, OptionValues, Subcommand } from '../cli/runner.ts';
import { OperatorError, UsageError } from '../cli/errors.ts';
import type { SessionOptions } from '../netns/session.ts';
import type { Registry } from '../state/registry.ts';
import { registryFrom, STATE_DIR_HELP, STATE_DIR_OPTION, stringFlag } from './common.ts';
import { attachmentLabel, byAttachment, humanBytes, humanRate, right, table } from './format.ts';
import { currentRates, ON_UPLINK, rateKey } from './rates.ts';

const USAGE = `Usage: tcqos stats [--container ID] [--ifname IF] [--json | --prometheus [--output FILE]]
                   [--interval SECONDS] [--state-dir DIR]

Per attachment, direction and class: the configured rate and ceiling, and the kernel's counters.
The table and --json also show the current rate, measured over --interval (default 1 s; 0 leaves
it out). "tcqos top" shows the same, refreshing.

Where each figure comes from (each direction is an HTB qdisc; each class an HTB class with a tbf
queue under it, at the class's ceiling):
  SENT, PACKETS  the HTB class (the direction: the HTB qdisc): frames on the wire, Ethernet header
                 included, as the rates count them
  DROPS          the class's queue: frames it refused because it was full (each frame of a GSO
                 packet); the direction adds what HTB dropped before any class
  OVERLIMITS     times a frame was held back at the ceiling (the queue short of tokens, or the HTB
                 class's ceil bucket empty); the direction adds its total's (its own rate reached)
  BACKLOG        bytes queued now
Counters never go down while the attachment lives: what a queue replaced by "tcqos update" had
counted is kept in the registry and added.

  --container ID     only this container's attachments
  --ifname IF        only attachments on this interface
  --json             one JSON document (an array of attachments)
  --prometheus       the Prometheus text format (tcqos_class_*, tcqos_direction_* families)
  --output FILE      with --prometheus: write FILE atomically (for node_exporter's textfile collector,
                     whose directory only reads *.prom files) instead of standard output
  --interval SECONDS the window of the current rate (table and --json)
${STATE_DIR_HELP}

Exit status: 0 printed, 1 failed (no attachment matches --container, or some counters could not be
read: the others are printed), 2 bad usage.
`;

/** `--container` and `--ifname` as a filter. */
export function filterFrom(values: OptionValues): StatsFilter {
  const containerId = stringFlag(values, 'container');
  const ifname = stringFlag(values, 'ifname');
  return { ...(containerId ? { containerId } : {}), ...(ifname ? { ifname } : {}) };
}

/**
 * The stats of the attachments the filter picks, in the order every view shows them. Naming a
 * container that has no attachment is a failure, as `kubectl get pod NAME` is; unreadable counters
 * are named on stderr (`command` says who speaks).
 */
export async function readForOperator(registry: Registry, filter: StatsFilter, io: CliIo, command: string, tools: SessionOptions = {}): Promise<StatsReading> {
  const reading = await readStats(registry, filter, tools);
  for (const problem of reading.unreadable) io.writeStderr(`tcqos ${command}: cannot read the counters of ${problem.containerId}/${problem.ifname}: ${problem.reason}\n`);
  if (!reading.stats.length && !reading.unreadable.length && filter.containerId !== undefined) {
    throw new OperatorError(`no attachment of container ${filter.containerId}${filter.ifname ? ` on ${filter.ifname}` : ''} is registered ("tcqos list" shows them)`);
  }
  return { stats: [...reading.stats].sort(byAttachment), unreadable: reading.unreadable };
}

const COLUMNS = ['ATTACHMENT', 'IFACE', 'DIRECTION', 'CLASS', right('RATE'), right('CEIL'), right('SENT'), right('PACKETS'), right('DROPS'), right('OVERLIMITS'), right('BACKLOG'), right('NOW')];

function asTable(stats: readonly AttachmentStats[], rates: Map<string, number> | undefined): string {
  const rows: string[][] = [];
  const current = (a: AttachmentStats, direction: string, name: string) => {
    const value = rates?.get(rateKey(a, direction, name));
    return value === undefined ? '-' : humanRate(value);
  };
  for (const a of stats) {
    for (const d of a.directions) {
      const counters = (c: { bytes: number; packets: number; drops: number; overlimits: number; backlogBytes: number }) => [
        humanBytes(c.bytes),
        String(c.packets),
        String(c.drops),
        String(c.overlimits),
        humanBytes(c.backlogBytes),
      ];
      rows.push([attachmentLabel(a), a.ifname, d.direction, '(total)', humanRate(d.rate), humanRate(d.ceil), ...counters(d), current(a, d.direction, '')]);
      for (const c of d.classes) rows.push(['', '', '', c.name, humanRate(c.rate), humanRate(c.ceil), ...counters(c), current(a, d.direction, c.name)]);
      // its class on the enforced uplink's tree, where it contends with the node's other pods
      const u = a.onUplink?.find((onUplink) => onUplink.direction === d.direction);
      if (u) rows.push(['', '', '', `(uplink ${a.uplink?.name ?? ''})`, humanRate(u.rate), humanRate(u.ceil), ...counters(u), current(a, d.direction, ON_UPLINK)]);
    }
  }
  return table(COLUMNS, rows);
}

function asJson(stats: readonly AttachmentStats[], rates: Map<string, number> | undefined): string {
  const withRates = stats.map((a) => ({
    ...a,
    directions: a.directions.map((d) => {
      const now = (name: string) => rates?.get(rateKey(a, d.direction, name));
      return { ...d, currentBitsPerSecond: now(''), classes: d.classes.map((c) => ({ ...c, currentBitsPerSecond: now(c.name) })) };
    }),
    ...(a.onUplink ? { onUplink: a.onUplink.map((u) => ({ ...u, currentBitsPerSecond: rates?.get(rateKey(a, u.direction, ON_UPLINK)) })) } : {}),
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
    const intervalText = stringFlag(values, 'interval') ?? '1';
    const interval = /^\d+(\.\d+)?$/.test(intervalText) ? Number(intervalText) : NaN;
    if (!(interval >= 0 && interval <= 60)) throw new UsageError(`--interval takes seconds from 0 to 60, not ${JSON.stringify(intervalText)}`);
    const registry = registryFrom(values, io);
    const filter = filterFrom(values);
    const first = await readForOperator(registry, filter, io, 'stats');
    const failed = first.unreadable.length ? 1 : 0;
    if (values['prometheus']) {
      const { renderStats } = await import('../metrics/prometheus.ts');
      const text = await renderStats(first.stats);
      if (output) {
        const { atomicWriteFile } = await import('../metrics/textfile.ts');
        await atomicWriteFile(output, text);
        if (!output.endsWith('.prom')) io.writeStderr(`tcqos stats: note: node_exporter's textfile collector reads only *.prom files\n`);
      } else {
        io.writeStdout(text);
      }
      return failed;
    }
    if (!first.stats.length && !values['json']) {
      io.writeStderr('no shaped attachments match\n');
      return failed;
    }
    let rates: Map<string, number> | undefined;
    let stats = first.stats;
    if (interval > 0) {
      const started = process.hrtime.bigint();
      await sleep(interval * 1000);
      stats = (await readForOperator(registry, filter, io, 'stats')).stats;
      rates = currentRates(first.stats, stats, Number(process.hrtime.bigint() - started) / 1e9);
    }
    io.writeStdout(values['json'] ? asJson(stats, rates) : asTable(stats, rates));
    return failed;
  },
};
