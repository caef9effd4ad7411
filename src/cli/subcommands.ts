/**
 * The subcommands, loaded on demand (src/cli/load.ts): a runtime's ADD never pays for the CLI, the
 * Kubernetes client or prom-client.
 */
import type { CliIo, Subcommand } from './runner.ts';
import { loadSubcommandBundle, type SubcommandBundle } from './load.ts';

export interface SubcommandEntry {
  readonly name: string;
  readonly summary: string;
  /** Left out of the help text (the completion scripts' own command). */
  readonly hidden?: boolean;
  load(): Promise<Subcommand>;
  /** Parses `argv`, runs the subcommand, waits for its log lines; resolves to the exit code. */
  run(argv: readonly string[], io: CliIo): Promise<number>;
}

const entry = (name: string, summary: string, pick: (bundle: SubcommandBundle) => Subcommand, hidden = false): SubcommandEntry => ({
  name,
  summary,
  hidden,
  load: async () => pick(await loadSubcommandBundle()),
  run: async (argv, io) => {
    const bundle = await loadSubcommandBundle();
    const exitCode = await bundle.runSubcommand(pick(bundle), argv, io);
    await bundle.logsWritten();
    return exitCode;
  },
});

export const SUBCOMMANDS: readonly SubcommandEntry[] = [
  entry('list', "the node's attachments: pods, directions, rates, uplinks; stale ones marked", (m) => m.listCommand),
  entry('stats', 'per-class counters: a table, JSON or Prometheus text', (m) => m.statsCommand),
  entry('top', 'a live view of every attachment and class: rates against rate and ceil', (m) => m.topCommand),
  entry('update', "change a running attachment's shaping in place (--dry-run shows what would change)", (m) => m.updateCommand),
  entry('validate', 'check a conflist, an entry or a tcqos.io/policy annotation as ADD would', (m) => m.validateCommand),
  entry('schema', 'print the JSON Schema of a tcqos conflist for editors', (m) => m.schemaCommand),
  entry('gc', 'drop the records of pods that are gone (STALE in list) and unheld locks', (m) => m.gcCommand),
  entry('install', 'copy the binary into a CNI bin dir and chain tcqos into conflists', (m) => m.installCommand),
  entry('uninstall', 'undo what install changed', (m) => m.uninstallCommand),
  entry('agent', 'the Kubernetes node agent: apply annotation edits live, serve /metrics', (m) => m.agentCommand),
  entry('completion', 'print a bash or zsh completion script', (m) => m.completionCommand),
  entry('__complete', 'candidates for shell completion', (m) => m.completeCommand, true),
];
