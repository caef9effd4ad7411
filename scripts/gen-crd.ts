// Writes deploy/bandwidthpolicy-crd.yaml from src/policy/crd.ts (itself made from the plugin's JSON
// Schema). test/unit/policy-crd.test.ts fails when the file is out of date: run this (Node 24)
// after changing the configuration schema.
import { writeFileSync } from 'node:fs';
import { crdText } from './crd-text.ts';

writeFileSync(new URL('../deploy/bandwidthpolicy-crd.yaml', import.meta.url), crdText());
