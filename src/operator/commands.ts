/**
 * The operator subcommands, loaded on demand (src/operator/load.ts): a runtime's ADD never pays
 * for the CLI, the Kubernetes client or prom-client.
 */
import type { OperatorCommand, OperatorIo } from './cli.ts';
import { loadOperatorModule, type OperatorModule } from './load.ts';

export interface OperatorEntry {
  readonly name: string;
  readonly summary: string;
  load(): Promise<OperatorCommand>;
  /** Parses `argv`, runs the subcommand, waits for its log lines; resolves to the exit code. */
  run(argv: readonly string[], io: OperatorIo): Promise<number>;
}

const entry = (name: string, summary: string, pick: (module: OperatorModule) => OperatorCommand): OperatorEntry => ({
  name,
  summary,
  load: async () => pick(await loadOperatorModule()),
  run: async (argv, io) => {
    const module = await loadOperatorModule();
    const exitCode = await module.runOperatorCommand(pick(module), argv, io);
    await module.logsWritten();
    return exitCode;
  },
});

export const OPERATOR_COMMANDS: readonly OperatorEntry[] = [
  entry('list', "the node's attachments: pods, directions, rates, uplinks", (m) => m.listCommand),
  entry('update', "change a running attachment's shaping in place", (m) => m.updateCommand),
  entry('stats', 'per-class counters: a table, JSON or Prometheus text', (m) => m.statsCommand),
  entry('install', 'copy the binary into a CNI bin dir and chain tcqos into conflists', (m) => m.installCommand),
  entry('uninstall', 'undo what install changed', (m) => m.uninstallCommand),
  entry('agent', 'the Kubernetes node agent: apply annotation edits live, serve /metrics', (m) => m.agentCommand),
];
