/**
 * The JSON Schemas for editors, made from the schemas tcqos validates with (src/config/schema.ts), so
 * an editor flags what ADD would refuse: one for a conflist chaining tcqos (or a lone tcqos entry),
 * one for the tcqos.io/policy annotation's value. `tcqos schema` prints them; conf/*.schema.json are
 * the same text, written by scripts/gen-schema.ts (a test keeps them up to date).
 */
import { UsageError } from '../cli/errors.ts';
import type { Subcommand } from '../cli/runner.ts';
import { configSchema, policyAnnotationSchema } from '../config/schema.ts';

const DRAFT = 'http://json-schema.org/draft-07/schema#';

/** A schema without its ajv `$id` (an `$id` inside a document would move the base of its references). */
function withoutId<T extends { $id: string }>(schema: T): Omit<T, '$id'> {
  const { $id: _id, ...rest } = schema;
  return rest;
}

/** A conflist whose tcqos entries are checked (other plugins are anyone's), or one tcqos entry alone. */
export function conflistSchema(): object {
  // In a conflist the runtime adds each entry's cniVersion: only `type` is the entry's own to give.
  const entry = { ...withoutId(configSchema), required: ['type'], description: 'The tcqos entry of a CNI configuration list (type "tcqos").' };
  return {
    $schema: DRAFT,
    $id: 'tcqos.schema.json',
    title: 'tcqos: a CNI configuration list chaining tcqos, or one tcqos entry',
    definitions: { tcqosEntry: entry },
    oneOf: [
      {
        type: 'object',
        required: ['cniVersion', 'name', 'plugins'],
        properties: {
          cniVersion: { type: 'string' },
          cniVersions: { type: 'array', items: { type: 'string' } },
          name: { type: 'string' },
          disableCheck: { type: 'boolean' },
          disableGC: { type: 'boolean' },
          plugins: {
            type: 'array',
            minItems: 1,
            items: {
              type: 'object',
              required: ['type'],
              if: { properties: { type: { const: 'tcqos' } } },
              then: { $ref: '#/definitions/tcqosEntry' },
            },
          },
        },
      },
      { $ref: '#/definitions/tcqosEntry' },
    ],
  };
}

/** The value of a tcqos.io/policy (or tcqos.io/policy.NETWORK) annotation. */
export function annotationSchema(): object {
  return {
    $schema: DRAFT,
    $id: 'tcqos-policy.schema.json',
    title: 'tcqos: the value of a tcqos.io/policy pod annotation',
    ...withoutId(policyAnnotationSchema),
  };
}

/** The text of a schema file: as `tcqos schema` prints it. */
export function schemaText(schema: object): string {
  return `${JSON.stringify(schema, null, 2)}\n`;
}

const USAGE = `Usage: tcqos schema [--annotation]

Prints the JSON Schema (draft-07) of a CNI configuration list chaining tcqos, or of one tcqos entry,
for editors: the same rules ADD checks (units and the class tree's arithmetic are checked by ADD and
"tcqos validate" only). The files conf/tcqos.schema.json and conf/tcqos-policy.schema.json hold the
same text.

  --annotation      the schema of the tcqos.io/policy annotation's value instead

Exit status: 0 printed, 2 bad usage.
`;

export const schemaCommand: Subcommand = {
  name: 'schema',
  summary: 'print the JSON Schema of a tcqos conflist (or --annotation) for editors',
  usage: USAGE,
  options: { annotation: { type: 'boolean' } },
  async run(values, positionals, io) {
    if (positionals.length) throw new UsageError('schema takes no arguments');
    io.writeStdout(schemaText(values['annotation'] ? annotationSchema() : conflistSchema()));
    return 0;
  },
};
