/**
 * `tcqos validate FILE|-`: checks a conflist, one network configuration or tcqos entry, or the value
 * of a `tcqos.io/policy` annotation with the validator ADD and the agent use, so its messages are
 * theirs. Nothing is read from or written to the node.
 */
import { LATEST_VERSION } from '../cni/version.ts';
import { OperatorError, UsageError } from '../cli/errors.ts';
import type { Subcommand } from '../cli/runner.ts';
import { derivePolicy } from '../config/derive.ts';
import { ConfigError } from '../config/errors.ts';
import { POLICY_ANNOTATION } from '../config/policy-annotations.ts';
import { DIRECTIONS, type DerivedPolicy, type Policy } from '../config/policy.ts';
import { humanRate } from './format.ts';
import { parseDocument, readSource } from './input.ts';

const KINDS = ['conflist', 'entry', 'annotation'] as const;
type Kind = (typeof KINDS)[number];

const USAGE = `Usage: tcqos validate [--kind conflist|entry|annotation] FILE|-

Checks a tcqos configuration the way ADD and the node agent do (same schema, same rules, same
messages), before it reaches a node:
  conflist     a CNI network configuration list: its tcqos entry, with the list's cniVersion and name
  entry        one network configuration, or the tcqos entry of a conflist (cniVersion, name and type
               may be left out)
  annotation   the value of a ${POLICY_ANNOTATION} (or ${POLICY_ANNOTATION}.NETWORK) pod annotation:
               {"egress": {...}, "ingress": {...}}
Without --kind: a document with "plugins" is a conflist, one with only "egress" and "ingress" an
annotation, anything else an entry. On success it prints the policy each one shapes with, and the
warnings ADD would log. "tcqos schema" prints the JSON Schema for editors.

Exit status: 0 valid, 1 invalid (one line says where and why), 2 bad usage.
`;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** What the document is, when --kind does not say. */
export function detectKind(document: unknown): Kind {
  if (isObject(document) && Array.isArray(document['plugins'])) return 'conflist';
  if (isObject(document) && Object.keys(document).length > 0 && Object.keys(document).every((key) => key === 'egress' || key === 'ingress')) return 'annotation';
  return 'entry';
}

/** The inputs ADD would derive the policy from, one per tcqos entry of the document. */
function inputsOf(kind: Kind, document: unknown, text: string): Array<{ label: string; inputs: Parameters<typeof derivePolicy>[0] }> {
  if (!isObject(document)) throw new OperatorError(`a ${kind} must be a JSON object`);
  if (kind === 'annotation') {
    return [{ label: `${POLICY_ANNOTATION} annotation`, inputs: { config: { cniVersion: LATEST_VERSION, type: 'tcqos' }, annotations: { [POLICY_ANNOTATION]: text } } }];
  }
  if (kind === 'entry') {
    if (document['type'] !== undefined && document['type'] !== 'tcqos') throw new OperatorError(`the entry is of type ${JSON.stringify(document['type'])}, not "tcqos"`);
    return [{ label: 'entry', inputs: { config: { cniVersion: LATEST_VERSION, type: 'tcqos', ...document } } }];
  }
  if (!Array.isArray(document['plugins'])) throw new OperatorError('the conflist has no "plugins" list');
  const entries = (document['plugins'] as unknown[]).flatMap((plugin, at) => (isObject(plugin) && plugin['type'] === 'tcqos' ? [{ plugin, at }] : []));
  if (!entries.length) throw new OperatorError('the conflist has no plugin of type "tcqos"');
  return entries.map(({ plugin, at }) => ({
    label: `plugins[${at}]`,
    inputs: { config: { ...plugin, cniVersion: document['cniVersion'], ...(document['name'] !== undefined ? { name: document['name'] } : {}) } },
  }));
}

function describePolicy(policy: Policy): string {
  const directions = DIRECTIONS.flatMap((direction) => {
    const tree = policy[direction];
    if (!tree) return [];
    const classes = tree.classes.map((c) => `${c.name} ${humanRate(c.rate)}${c.ceil !== c.rate ? `-${humanRate(c.ceil)}` : ''}`).join(', ');
    return [`${direction} ${humanRate(tree.rate)}${tree.ceil !== tree.rate ? ` (ceil ${humanRate(tree.ceil)})` : ''}: ${classes}`];
  });
  return directions.length ? directions.join('; ') : 'no shaping (nothing limits either direction)';
}

export const validateCommand: Subcommand = {
  name: 'validate',
  summary: 'check a conflist, an entry or a tcqos.io/policy annotation as ADD would',
  usage: USAGE,
  options: { kind: { type: 'string' } },
  choices: { kind: KINDS },
  allowPositionals: true,
  async run(values, positionals, io) {
    if (positionals.length !== 1) throw new UsageError('name one FILE, or - for standard input');
    const kindFlag = values['kind'];
    const source = positionals[0]!;
    const what = source === '-' ? 'standard input' : source;
    const text = await readSource(source, io, what);
    const document = parseDocument(text, what);
    const kind = (kindFlag as Kind | undefined) ?? detectKind(document);
    const checked: Array<{ label: string; derived: DerivedPolicy }> = [];
    for (const { label, inputs } of inputsOf(kind, document, text)) {
      try {
        checked.push({ label, derived: await derivePolicy(inputs) });
      } catch (error) {
        if (error instanceof ConfigError) throw new OperatorError(`${what}: ${kind === 'conflist' ? `${label}: ` : ''}${error.message}`);
        throw error;
      }
    }
    for (const { label, derived } of checked) {
      io.writeStdout(`${what}: valid ${kind}${kind === 'conflist' ? ` (${label})` : ''}: ${describePolicy(derived.policy)}\n`);
      for (const warning of derived.warnings) io.writeStderr(`tcqos validate: warning: ${warning}\n`);
      for (const notice of derived.notices) io.writeStderr(`tcqos validate: note: ${notice}\n`);
    }
    return 0;
  },
};
