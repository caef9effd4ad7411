/**
 * The subcommands, loaded on demand (src/cli/load.ts): a runtime's ADD never pays for the CLI, the
 * Kubernetes client or prom-client.
 */
import type { CliIo, Subcommand } from './runner.ts';
import { loadSubcommandBundle, type SubcommandBundle } from './load.ts';

export interface SubcommandEntry {
  readonly name: string;
  readonly summary: string;
  load(): Promise<Subcommand>;
  /** Parses `argv`, runs the subcommand, waits for its log lines; resolves to the exit code. */
  run(argv: readonly string[], io: CliIo): Promise<number>;
}

const entry = (name: string, summary: string, pick: (bundle: SubcommandBundle) => Subcommand): SubcommandEntry => ({
  name,
  summary,
  load: async () => pick(await loadSubcommandBundle()),
  run: async (argv, io) => {
    const bundle = await loadSubcommandBundle();
    const exitCode = await bundle.runSubcommand(pick(bundle), argv, io);
    await bundle.logsWritten();
    return exitCode;
  },
});

export const SUBCOMMANDS: readonly SubcommandEntry[] = [
  entry('list', "the node's attachments: pods, directions, rates, uplinks", (m) => m.listCommand),
  entry('update', "change a running attachment's shaping in place", (m) => m.updateCommand),
  entry('stats', 'per-class counters: a table, JSON or Prometheus text', (m) => m.statsCommand),
  entry('install', 'copy the binary into a CNI bin dir and chain tcqos into conflists', (m) => m.installCommand),
  entry('uninstall', 'undo what install changed', (m) => m.uninstallCommand),
  entry('agent', 'the Kubernetes node agent: apply annotation edits live, serve /metrics', (m) => m.agentCommand),
];
