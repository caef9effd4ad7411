/**
 * `tcqos update`: change a running attachment's shaping in place, from the same configuration a
 * conflist holds. The node's root operator sets the caps (any valid value); the pod's own values
 * recorded at ADD or by the agent still tighten them. It cannot surprise: `--dry-run` shows the
 * policy's changes and the tc lines and changes nothing, an update that would leave a direction
 * unshaped needs `--allow-unshape`, and a configuration for another network is refused.
 */
import { applyOperatorConfig, type UpdateOutcome } from '../attachment/update.ts';
import { ConfigError } from '../config/errors.ts';
import { DIRECTIONS } from '../config/policy.ts';
import { LATEST_VERSION } from '../cni/version.ts';
import { type Subcommand } from '../cli/runner.ts';
import { OperatorError, UsageError } from '../cli/errors.ts';
import type { AttachmentRecord, AttachmentRef } from '../state/record.ts';
import type { Registry } from '../state/registry.ts';
import { isStale, operatorLogger, registryFrom, STATE_DIR_HELP, STATE_DIR_OPTION, stringFlag } from './common.ts';
import { readDocument } from './input.ts';
import { policyChanges } from './policy-diff.ts';

const USAGE = `Usage: tcqos update --container ID --ifname IF --config FILE|- [--dry-run] [--allow-unshape]
                    [--json] [--state-dir DIR]

Changes the shaping of a running attachment in place: classes are retuned with "tc class change",
added or removed one by one, and filters replaced under the same root. Flows keep running. A class
keeps its counters; a leaf queue whose bucket shrinks is replaced, and tcqos carries its counts.
The configuration is the tcqos entry of a conflist (as in the conflist, with or without cniVersion,
name and type), a whole network configuration, or a whole conflist (its tcqos entry is used). It is
validated exactly as at ADD, and its "name", when given, must be the attachment's network. It
replaces the attachment's caps: values the pod asked for (runtime bandwidth, tcqos.io/policy
annotations) still tighten them, never loosen them.

  --container ID    the attachment's container id (CNI_CONTAINERID; see "tcqos list")
  --ifname IF       its interface in the pod (CNI_IFNAME)
  --config FILE     the configuration, or - for standard input
  --dry-run         print what would change (the policy and the tc lines) and change nothing
  --allow-unshape   allow an update that leaves a shaped direction without shaping (e.g. {})
  --json            print the outcome as JSON (the record, or with --dry-run the policies and lines)
${STATE_DIR_HELP}

Exit status: 0 updated (or already as asked, or a dry run), 1 refused or failed (the line says why;
nothing was changed), 2 bad usage.
`;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The tcqos entry out of whatever the operator handed in: a conflist, a network config, or an entry. */
export function tcqosEntry(document: unknown): Record<string, unknown> {
  if (!isObject(document)) throw new OperatorError('the configuration must be a JSON object');
  if (Array.isArray(document['plugins'])) {
    const entry = (document['plugins'] as unknown[]).find((plugin) => isObject(plugin) && plugin['type'] === 'tcqos');
    if (!isObject(entry)) throw new OperatorError('the conflist has no plugin of type "tcqos"');
    return { cniVersion: document['cniVersion'] ?? LATEST_VERSION, ...(document['name'] !== undefined ? { name: document['name'] } : {}), ...entry };
  }
  return { cniVersion: LATEST_VERSION, type: 'tcqos', ...document };
}

/** The registered attachment, refused when it is missing or stale (its netns gone). */
function liveRecord(registry: Registry, ref: AttachmentRef): AttachmentRecord | undefined {
  const { record } = registry.read(ref);
  if (record && isStale(record)) {
    throw new OperatorError(`attachment ${ref.containerId}/${ref.ifname} is stale: its network namespace ${record.netns} is gone; "tcqos gc" drops its record`);
  }
  return record;
}

function dryRunText(ref: AttachmentRef, outcome: UpdateOutcome): string {
  const changes = policyChanges(outcome.previous.policy, outcome.record.policy);
  const lines = [
    `dry run: nothing was changed on ${ref.containerId}/${ref.ifname}`,
    'policy:',
    ...(changes.length ? changes.map((line) => `  ${line}`) : ['  unchanged']),
    `tc (${outcome.commands.length} line${outcome.commands.length === 1 ? '' : 's'}):`,
    ...(outcome.commands.length ? outcome.commands.map((line) => `  tc ${line}`) : ['  none: the kernel already shapes as asked']),
  ];
  return `${lines.join('\n')}\n`;
}

export const updateCommand: Subcommand = {
  name: 'update',
  summary: "change a running attachment's shaping in place",
  usage: USAGE,
  options: {
    container: { type: 'string' },
    ifname: { type: 'string' },
    config: { type: 'string' },
    'dry-run': { type: 'boolean' },
    'allow-unshape': { type: 'boolean' },
    json: { type: 'boolean' },
    ...STATE_DIR_OPTION,
  },
  async run(values, _positionals, io) {
    const containerId = stringFlag(values, 'container');
    const ifname = stringFlag(values, 'ifname');
    const source = stringFlag(values, 'config');
    if (!containerId || !ifname || !source) throw new UsageError('--container, --ifname and --config are all required');
    const config = tcqosEntry(await readDocument(source, io, `--config ${source}`));
    const registry = registryFrom(values, io);
    const ref = { containerId, ifname };
    const record = liveRecord(registry, ref);
    if (record && config['name'] !== undefined && config['name'] !== record.network) {
      throw new OperatorError(`the configuration is for network ${JSON.stringify(config['name'])}, and ${containerId}/${ifname} is on network ${JSON.stringify(record.network)}`);
    }
    const apply = async (dryRun: boolean) => {
      try {
        return await applyOperatorConfig(registry, ref, config, { log: operatorLogger('update'), dryRun });
      } catch (error) {
        if (error instanceof ConfigError) throw new OperatorError(`invalid tcqos configuration: ${error.message}`);
        throw error;
      }
    };
    if (values['dry-run']) {
      const planned = await apply(true);
      io.writeStdout(
        values['json']
          ? `${JSON.stringify({ dryRun: true, changed: planned.changed, previous: planned.previous.policy, policy: planned.record.policy, commands: planned.commands }, null, 2)}\n`
          : dryRunText(ref, planned),
      );
      return 0;
    }
    if (!values['allow-unshape']) {
      // Worked out first, without a change: a direction left unshaped must be asked for.
      const planned = await apply(true);
      const unshaped = DIRECTIONS.filter((direction) => planned.previous.policy[direction] && !planned.record.policy[direction]);
      if (unshaped.length) {
        throw new OperatorError(
          `this configuration removes all ${unshaped.join(' and ')} shaping of ${containerId}/${ifname}; pass --allow-unshape if that is meant (--dry-run shows the change)`,
        );
      }
    }
    const outcome = await apply(false);
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
