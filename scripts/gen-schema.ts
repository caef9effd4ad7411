// Writes the editors' JSON Schemas (conf/tcqos.schema.json, conf/tcqos-policy.schema.json) from
// src/config/schema.ts, as `tcqos schema` prints them. test/unit/operator-schema.test.ts fails when
// they are out of date: run this (Node 24) after changing the configuration schema.
import { writeFileSync } from 'node:fs';
import { annotationSchema, conflistSchema, schemaText } from '../src/operator/schema.ts';

for (const [file, schema] of [['tcqos.schema.json', conflistSchema()], ['tcqos-policy.schema.json', annotationSchema()]] as const) {
  writeFileSync(new URL(`../conf/${file}`, import.meta.url), schemaText(schema));
}
