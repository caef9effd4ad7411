// Placeholder until the subcommand lands (being written now).
import { OperatorError, type OperatorCommand } from './cli.ts';

export const updateCommand: OperatorCommand = {
  name: 'update',
  summary: '',
  usage: 'tcqos update: not built yet',
  options: {},
  run: async () => {
    throw new OperatorError('not built yet');
  },
};
