/**
 * `tcqos update`: change a running attachment's shaping in place, from the same configuration a
 * conflist holds. The node's root operator sets the caps (any valid value); the pod's own values
 * recorded at ADD or by the agent still tighten them.
 */
import { readFileSync } from 'node:fs';
import { applyOperatorConfig } from '../attachment/update.ts';
import { ConfigError } from '../config/errors.ts';
import { LATEST_VERSION } from '../cni/version.ts';
import { type Subcommand, type CliIo } from '../cli/runner.ts';
import { OperatorError, UsageError } from '../cli/errors.ts';
import { operatorLogger, registryFrom, STATE_DIR_HELP, STATE_DIR_OPTION, stringFlag } from './common.ts';

const USAGE = `Usage: tcqos update --container ID --ifname IF --config FILE|- [--json] [--state-dir DIR]

Changes the shaping of a running attachment in place: classes are retuned with "tc class change"
(queues and counters kept), added or removed one by one, and filters replaced under the same root.
Flows keep running. The configuration is the tcqos entry of a conflist (as in the conflist, with or
without cniVersion, name and type), a whole network configuration, or a whole conflist (its tcqos
entry is used). It is validated exactly as at ADD. It replaces the attachment's caps: values the pod
asked for (runtime bandwidth, tcqos.io/policy annotations) still tighten them, never loosen them.

  --container ID    the attachment's container id (CNI_CONTAINERID; see "tcqos list")
  --ifname IF       its interface in the pod (CNI_IFNAME)
  --config FILE     the configuration, or - for standard input
  --json            print the updated record as JSON
${STATE_DIR_HELP}

Exit status: 0 updated (or already as asked), 1 refused or failed (the line says why; nothing was
changed), 2 bad usage.
`;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The tcqos entry out of whatever the operator handed in: a conflist, a network config, or an entry. */
export function tcqosEntry(document: unknown): Record<string, unknown> {
  if (!isObject(document)) throw new UsageError('the configuration must be a JSON object');
  if (Array.isArray(document['plugins'])) {
    const entry = (document['plugins'] as unknown[]).find((plugin) => isObject(plugin) && plugin['type'] === 'tcqos');
    if (!isObject(entry)) throw new UsageError('the conflist has no plugin of type "tcqos"');
    return { cniVersion: document['cniVersion'] ?? LATEST_VERSION, ...entry };
  }
  return { cniVersion: LATEST_VERSION, type: 'tcqos', ...document };
}

async function readConfig(source: string, io: CliIo): Promise<unknown> {
  let text: string;
  try {
    text = source === '-' ? (await io.readStdin()).toString('utf8') : readFileSync(source, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read --config ${source}: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--config ${source} is not valid JSON: ${(error as Error).message}`);
  }
}

export const updateCommand: Subcommand = {
  name: 'update',
  summary: "change a running attachment's shaping in place",
  usage: USAGE,
  options: { container: { type: 'string' }, ifname: { type: 'string' }, config: { type: 'string' }, json: { type: 'boolean' }, ...STATE_DIR_OPTION },
  async run(values, _positionals, io) {
    const containerId = stringFlag(values, 'container');
    const ifname = stringFlag(values, 'ifname');
    const source = stringFlag(values, 'config');
    if (!containerId || !ifname || !source) throw new UsageError('--container, --ifname and --config are all required');
    const config = tcqosEntry(await readConfig(source, io));
    const registry = registryFrom(values, io);
    let outcome;
    try {
      outcome = await applyOperatorConfig(registry, { containerId, ifname }, config, { log: operatorLogger('update') });
    } catch (error) {
      if (error instanceof ConfigError) throw new OperatorError(`invalid tcqos configuration: ${error.message}`);
      throw error;
    }
    if (values['json']) {
      io.writeStdout(`${JSON.stringify(outcome.record, null, 2)}\n`);
    } else {
      io.writeStdout(
        outcome.changed
          ? `updated ${containerId}/${ifname} in place (${outcome.commands.length} tc change${outcome.commands.length === 1 ? '' : 's'}):\n${outcome.commands.map((line) => `  tc ${line}\n`).join('')}`
          : `${containerId}/${ifname} already shapes as asked: nothing changed\n`,
      );
    }
    return 0;
  },
};
