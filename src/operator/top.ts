/**
 * `tcqos top`: a refreshing terminal view of every attachment and class (src/operator/top-view.ts
 * draws it). The terminal is driven with a few escape sequences (the alternate screen, the cursor,
 * clearing to the end of line) and raw key presses, no TUI library: what it needs is small, and the
 * operator bundle stays lean. Whatever ends it (q, Ctrl-C, SIGTERM, SIGHUP, an error) puts the
 * terminal back as it was. Keys are answered between two attachments' reads.
 */
import { setImmediate as yieldToEvents, setTimeout as sleep } from 'node:timers/promises';
import type { AttachmentStats } from '../attachment/stats.ts';
import { UsageError } from '../cli/errors.ts';
import type { Subcommand } from '../cli/runner.ts';
import { syncToolRunner, type ToolRunner } from '../netns/runner.ts';
import { registryFrom, STATE_DIR_HELP, STATE_DIR_OPTION, stringFlag } from './common.ts';
import { filterFrom, readForOperator } from './stats.ts';
import { renderTop, SORT_KEYS, SORT_LETTERS, topRows, type SortKey } from './top-view.ts';

const USAGE = `Usage: tcqos top [--container ID] [--ifname IF] [--interval SECONDS] [--sort KEY] [--once]
                 [--state-dir DIR]

A live view of the attachments tcqos shapes on this node: for each direction and class, the rate
now against its ceiling as a bar ("=" sent now, "|" the guaranteed rate), the use of the ceiling,
the configured rate and ceiling, drops (in all, and per second now) and the bytes queued. The
figures are those of "tcqos stats" (its --help says which kernel object each comes from).

Keys: n, r, u, d, b sort by name, rate now, use of the ceiling, drops now, backlog (largest
first); space refreshes now; q or Ctrl-C quits and puts the terminal back.

  --container ID     only this container's attachments
  --ifname IF        only attachments on this interface
  --interval SECONDS how often to refresh (default 1; from 0.2 to 60)
  --sort KEY         the first sort order: ${SORT_KEYS.join(', ')} (default name)
  --once             print one view (after one interval, to have rates) and exit: no terminal needed
${STATE_DIR_HELP}

Exit status: 0 quit, 1 failed (no attachment matches --container), 2 bad usage (or no terminal
without --once).
`;

/**
 * The plugin's synchronous runner, letting the event loop run before each tc: keys are answered
 * between two attachments' reads (a few ms apart), and no run pays for execa's asynchronous
 * machinery (a refresh of 100 attachments: 1.3 s of CPU with the asynchronous runner).
 */
const yieldingRunner: ToolRunner = {
  async run(request) {
    await yieldToEvents();
    return syncToolRunner.run(request);
  },
};

const ENTER = '\x1b[?1049h\x1b[?25l';
const LEAVE = '\x1b[?25h\x1b[?1049l';
const HOME = '\x1b[H';
const END_OF_LINE = '\x1b[K';
const END_OF_SCREEN = '\x1b[J';

export const topCommand: Subcommand = {
  name: 'top',
  summary: 'a live view of every attachment and class: rates against rate and ceil',
  usage: USAGE,
  options: {
    container: { type: 'string' },
    ifname: { type: 'string' },
    interval: { type: 'string' },
    sort: { type: 'string' },
    once: { type: 'boolean' },
    ...STATE_DIR_OPTION,
  },
  choices: { sort: SORT_KEYS },
  async run(values, _positionals, io) {
    const intervalText = stringFlag(values, 'interval') ?? '1';
    const interval = /^\d+(\.\d+)?$/.test(intervalText) ? Number(intervalText) : NaN;
    if (!(interval >= 0.2 && interval <= 60)) throw new UsageError(`--interval takes seconds from 0.2 to 60, not ${JSON.stringify(intervalText)}`);
    const sortText = stringFlag(values, 'sort') ?? 'name';
    if (!values['once'] && !(process.stdin.isTTY && process.stdout.isTTY)) {
      throw new UsageError('needs a terminal (--once prints one view without one; "tcqos stats --interval N" reads once)');
    }
    const registry = registryFrom(values, io);
    const filter = filterFrom(values);
    const tools = { runner: yieldingRunner };
    const read = async () => {
      const started = process.hrtime.bigint();
      const reading = await readForOperator(registry, filter, io, 'top', tools);
      return { ...reading, started };
    };
    const first = await read();
    if (values['once']) {
      await sleep(interval * 1000);
      const second = await read();
      const seconds = Number(second.started - first.started) / 1e9;
      const lines = renderTop(topRows(first.stats, second.stats, seconds), { sort: sortText as SortKey, intervalSeconds: interval, at: new Date() }, { columns: 1_000, rows: 1_000_000 });
      io.writeStdout(`${lines.join('\n')}\n`);
      return second.unreadable.length ? 1 : 0;
    }
    return liveView({ read, first, interval, sort: sortText as SortKey });
  },
};

interface Reading {
  readonly stats: AttachmentStats[];
  readonly unreadable: readonly unknown[];
  readonly started: bigint;
}

/** Refreshes until a key or a signal ends it; resolves once the terminal is as it was. */
async function liveView(options: { read: () => Promise<Reading>; first: Reading; interval: number; sort: SortKey }): Promise<number> {
  const stdin = process.stdin;
  const stdout = process.stdout;
  let sort = options.sort;
  let previous: Reading | undefined;
  let latest = options.first;
  let quit: (() => void) | undefined;
  let wake: (() => void) | undefined;
  const ended = new Promise<void>((resolve) => (quit = resolve));
  let done = false;

  const draw = () => {
    const seconds = previous ? Number(latest.started - previous.started) / 1e9 : 0;
    const problem = latest.unreadable.length ? `${latest.unreadable.length} attachment(s) could not be read` : undefined;
    const lines = renderTop(topRows(previous?.stats, latest.stats, seconds), { sort, intervalSeconds: options.interval, at: new Date(), ...(problem ? { problem } : {}) }, {
      columns: stdout.columns || 80,
      rows: stdout.rows || 24,
    });
    stdout.write(`${HOME}${lines.map((line) => `${line}${END_OF_LINE}`).join('\n')}\n${END_OF_SCREEN}`);
  };
  const finish = () => {
    if (done) return;
    done = true;
    quit?.();
    wake?.();
  };
  const onKey = (data: Buffer) => {
    for (const key of data.toString('utf8')) {
      if (key === 'q' || key === 'Q' || key === '\x03' || key === '\x04') return finish();
      if (SORT_LETTERS[key]) {
        sort = SORT_LETTERS[key]!;
        draw();
      } else if (key === ' ') {
        wake?.();
      }
    }
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

  stdout.write(ENTER);
  stdin.setRawMode(true);
  stdin.on('data', onKey);
  stdin.resume();
  stdout.on('resize', draw);
  for (const signal of signals) process.on(signal, finish);
  try {
    draw();
    while (!done) {
      await Promise.race([ended, new Promise<void>((resolve) => ((wake = resolve), setTimeout(resolve, options.interval * 1000)))]);
      if (done) break;
      const next = await Promise.race([options.read(), ended.then(() => undefined)]);
      if (!next || done) break;
      previous = latest;
      latest = next;
      draw();
    }
  } finally {
    for (const signal of signals) process.off(signal, finish);
    stdout.off('resize', draw);
    stdin.off('data', onKey);
    stdin.setRawMode(false);
    stdin.pause();
    stdout.write(LEAVE);
  }
  return 0;
}
