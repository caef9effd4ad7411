/**
 * The operator subcommands, loaded on demand (src/operator/load.ts): a runtime's ADD never pays
 * for the CLI, the Kubernetes client or prom-client.
 */
import type { OperatorCommand } from './cli.ts';
import { loadOperatorModule, type OperatorModule } from './load.ts';

export interface OperatorEntry {
  readonly name: string;
  readonly summary: string;
  load(): Promise<OperatorCommand>;
}

const entry = (name: string, summary: string, pick: (module: OperatorModule) => OperatorCommand): OperatorEntry => ({
  name,
  summary,
  load: async () => pick(await loadOperatorModule()),
});

export const OPERATOR_COMMANDS: readonly OperatorEntry[] = [
  entry('list', "the node's attachments: pods, directions, rates, uplinks", (m) => m.listCommand),
  entry('update', "change a running attachment's shaping in place", (m) => m.updateCommand),
  entry('stats', 'per-class counters: a table, JSON or Prometheus text', (m) => m.statsCommand),
  entry('install', 'copy the binary into a CNI bin dir and chain tcqos into conflists', (m) => m.installCommand),
  entry('uninstall', 'undo what install changed', (m) => m.uninstallCommand),
  entry('agent', 'the Kubernetes node agent: apply annotation edits live, serve /metrics', (m) => m.agentCommand),
];

/** Resolves when the operator module's log lines are written (it has its own logger in the executable). */
export async function operatorLogsWritten(): Promise<void> {
  await (await loadOperatorModule()).logsWritten();
}
