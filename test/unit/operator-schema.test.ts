/**
 * The editors' JSON Schemas: the committed files are what `tcqos schema` prints (made from the schema
 * ADD validates with), and an editor using them accepts the example conflists and annotations and
 * flags what ADD refuses.
 */
import { readdirSync, readFileSync } from 'node:fs';
import Ajv from 'ajv';
import { describe, expect, it } from 'vitest';
import { annotationSchema, conflistSchema, schemaText } from '../../src/operator/schema.ts';

const conf = (name: string) => readFileSync(new URL(`../../conf/${name}`, import.meta.url), 'utf8');

describe('conf/*.schema.json', () => {
  it('are up to date with src/config/schema.ts (else: node scripts/gen-schema.ts)', () => {
    expect(conf('tcqos.schema.json')).toBe(schemaText(conflistSchema()));
    expect(conf('tcqos-policy.schema.json')).toBe(schemaText(annotationSchema()));
  });

  const ajv = new Ajv.default({ strict: false, allErrors: true });
  const conflist = ajv.compile(JSON.parse(conf('tcqos.schema.json')) as object);
  const annotation = ajv.compile(JSON.parse(conf('tcqos-policy.schema.json')) as object);

  it('accept every example conflist, and a lone tcqos entry', () => {
    const examples = readdirSync(new URL('../../conf/', import.meta.url)).filter((name) => name.endsWith('.conflist'));
    expect(examples.length).toBeGreaterThan(0);
    for (const name of examples) expect(conflist(JSON.parse(conf(name))), `${name}: ${ajv.errorsText(conflist.errors)}`).toBe(true);
    expect(conflist({ type: 'tcqos', egress: { rate: '10mbit' } })).toBe(true);
  });

  it("flag a tcqos entry's unknown key or wrong type, and leave other plugins alone", () => {
    const list = (entry: object) => ({ cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'macvlan', anything: [1] }, { type: 'tcqos', ...entry }] });
    expect(conflist(list({ egress: { rate: '10mbit' } }))).toBe(true);
    expect(conflist(list({ egres: { rate: '10mbit' } }))).toBe(false);
    expect(conflist(list({ egress: { rate: '10mbit', classes: [{ name: 'a' }] } }))).toBe(false);
    expect(conflist(list({ hostSide: 'yes' }))).toBe(false);
  });

  it('check an annotation value: directions only', () => {
    expect(annotation({ egress: { rate: '10mbit', classes: [{ name: 'db', rate: '5mbit', peers: ['10.0.0.0/8'] }] } })).toBe(true);
    expect(annotation({ egress: { rate: '10mbit' }, logLevel: 'debug' })).toBe(false);
  });
});
