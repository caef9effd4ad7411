// Placeholder until the subcommands land (being written now).
import { OperatorError, type OperatorCommand } from './cli.ts';

const placeholder = (name: string): OperatorCommand => ({
  name,
  summary: '',
  usage: `tcqos ${name}: not built yet`,
  options: {},
  run: async () => {
    throw new OperatorError('not built yet');
  },
});
export const installCommand = placeholder('install');
export const uninstallCommand = placeholder('uninstall');
