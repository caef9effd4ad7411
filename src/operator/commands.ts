/**
 * The operator subcommands, loaded on demand: a runtime's ADD never pays for the CLI, the
 * Kubernetes client or prom-client.
 */
import type { OperatorCommand } from './cli.ts';

export interface OperatorEntry {
  readonly name: string;
  readonly summary: string;
  load(): Promise<OperatorCommand>;
}

export const OPERATOR_COMMANDS: readonly OperatorEntry[] = [
  { name: 'list', summary: "the node's attachments: pods, directions, rates, uplinks", load: async () => (await import('./list.ts')).listCommand },
  { name: 'update', summary: "change a running attachment's shaping in place", load: async () => (await import('./update.ts')).updateCommand },
  { name: 'stats', summary: 'per-class counters: a table, JSON or Prometheus text', load: async () => (await import('./stats.ts')).statsCommand },
  { name: 'install', summary: 'copy the binary into a CNI bin dir and chain tcqos into conflists', load: async () => (await import('./install.ts')).installCommand },
  { name: 'uninstall', summary: 'undo what install changed', load: async () => (await import('./install.ts')).uninstallCommand },
  { name: 'agent', summary: 'the Kubernetes node agent: apply annotation edits live, serve /metrics', load: async () => (await import('../agent/command.ts')).agentCommand },
];
