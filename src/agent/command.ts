// Placeholder until the subcommand lands (being written now).
import { OperatorError, type OperatorCommand } from '../operator/cli.ts';

export const agentCommand: OperatorCommand = {
  name: 'agent',
  summary: '',
  usage: 'tcqos agent: not built yet',
  options: {},
  run: async () => {
    throw new OperatorError('not built yet');
  },
};
