// Placeholder until the subcommand lands (being written now).
import { OperatorError, type OperatorCommand } from './cli.ts';

export const listCommand: OperatorCommand = {
  name: 'list',
  summary: '',
  usage: 'tcqos list: not built yet',
  options: {},
  run: async () => {
    throw new OperatorError('not built yet');
  },
};
