/**
 * The tc and ip runs of the node's own namespace, batched across the sessions of a long-running
 * process (the agent): the host ends of veth pods all sit there, so workers converging many pods at
 * once (a BandwidthPolicy edit, a resync) share their processes instead of starting two to four per
 * pod. What is asked while a run is under way goes in one next run (src/netns/coalesce.ts), so
 * every read starts after it was asked for.
 *
 * Changes batch too: each asker's tc lines run in its own order, and tc stops at the first line
 * that fails ("Command failed -:N"). The asker whose lines hold N gets that failure, numbered in its
 * own lines; those before it were applied; those after it are run again in a further batch.
 */
import { script } from '../plan/batch.ts';
import type { LinkInfo } from '../tc/types.ts';
import { Coalescer } from './coalesce.ts';
import { readLinksNow } from './observe.ts';
import { failedCommands } from './parse.ts';
import type { ToolRunner } from './runner.ts';
import { NetnsSession, withSession, type ToolRun } from './session.ts';
import { showNow, type ShowCommand, type Shown } from './show.ts';

/** How one run goes: a session of the node's namespace running it at once. */
export interface NodeRunners {
  show(commands: readonly ShowCommand[]): Promise<Shown[]>;
  links(devices: readonly string[]): Promise<LinkInfo[]>;
  /** `tc -batch -` of these lines. */
  change(lines: readonly string[]): Promise<ToolRun>;
}

export class NodeBatches {
  private readonly shows: Coalescer<readonly ShowCommand[], Shown[]>;
  private readonly linkReads: Coalescer<readonly string[], LinkInfo[]>;
  private readonly changes: Coalescer<readonly string[], ToolRun>;

  constructor(runners: NodeRunners) {
    this.shows = new Coalescer(async (asked) => {
      const shown = await runners.show(asked.flat());
      let at = 0;
      return asked.map((commands) => shown.slice(at, (at += commands.length)));
    });
    this.linkReads = new Coalescer(async (asked) => {
      const links = await runners.links([...new Set(asked.flat())]);
      return asked.map((devices) => links.filter((link) => devices.includes(link.name)));
    });
    this.changes = new Coalescer((asked) => changeInTurn(runners, asked));
  }

  /** What each command printed (undefined for a failed one), as `showAll` answers. */
  show(commands: readonly ShowCommand[]): Promise<Shown[]> {
    return this.shows.ask(commands);
  }

  /** The links named that exist. */
  links(devices: readonly string[]): Promise<LinkInfo[]> {
    return this.linkReads.ask(devices);
  }

  /** Runs the lines as `tc -batch -` would, alone: its outcome speaks of these lines only. */
  change(lines: readonly string[]): Promise<ToolRun> {
    return this.changes.ask(lines);
  }
}

/** The node namespace's batches that a long-running process's sessions share, each run with `runner`. */
export function sharedNodeBatches(runner: ToolRunner): NodeBatches {
  const inNode = <T>(work: (node: NetnsSession) => Promise<T>) => withSession(NetnsSession.node({ runner }), work);
  return new NodeBatches({
    show: (commands) => inNode((node) => showNow(node, commands)),
    links: (devices) => inNode((node) => readLinksNow(node, devices)),
    change: (lines) => inNode((node) => node.run('tc', ['-batch', '-'], script(lines))),
  });
}

async function changeInTurn(runners: NodeRunners, asked: readonly (readonly string[])[]): Promise<ToolRun[]> {
  const outcomes: ToolRun[] = [];
  while (outcomes.length < asked.length) {
    const pending = asked.slice(outcomes.length);
    const ran = await runners.change(pending.flat());
    const applied: ToolRun = { command: ran.command, exitCode: 0, stdout: '', stderr: '' };
    const [failedAt] = [...failedCommands(ran.stderr)];
    if (ran.exitCode === 0 || failedAt === undefined) {
      // all applied, or a failure that is no line's own (tc could not start): the same for everyone
      outcomes.push(...pending.map(() => (ran.exitCode === 0 ? applied : ran)));
      continue;
    }
    let first = 0;
    for (const lines of pending) {
      if (failedAt > first + lines.length) {
        outcomes.push(applied);
        first += lines.length;
        continue;
      }
      outcomes.push({ ...ran, stderr: ran.stderr.replace(/^(Command failed [^\n]*:)(\d+)$/gm, (_all, text: string, at: string) => `${text}${Number(at) - first}`) });
      break;
    }
  }
  return outcomes;
}
