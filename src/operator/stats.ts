// Placeholder until the subcommand lands (being written now).
import { OperatorError, type OperatorCommand } from './cli.ts';

export const statsCommand: OperatorCommand = {
  name: 'stats',
  summary: '',
  usage: 'tcqos stats: not built yet',
  options: {},
  run: async () => {
    throw new OperatorError('not built yet');
  },
};
