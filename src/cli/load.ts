/**
 * Loading the subcommands' bundle (src/cli/bundle.ts). Inside the single executable it is the
 * `operator.cjs` asset, compiled when a subcommand first needs it; anywhere else (tests, a plain
 * Node) it is imported as usual. The executable's own bundle never contains it (scripts/build.sh
 * marks it external), which keeps the CNI path's snapshot small.
 */
import { createRequire } from 'node:module';
import { compileFunction } from 'node:vm';

export type SubcommandBundle = typeof import('./bundle.ts');

let loaded: Promise<SubcommandBundle> | undefined;

export function loadSubcommandBundle(): Promise<SubcommandBundle> {
  loaded ??= fromAsset() ?? import('./bundle.ts');
  return loaded;
}

/** The bundled module from the executable's asset; undefined when not running as the executable. */
function fromAsset(): Promise<SubcommandBundle> | undefined {
  const require = createRequire(process.execPath);
  const sea = require('node:sea') as typeof import('node:sea');
  if (!sea.isSea()) return undefined;
  const source = sea.getAsset('operator.cjs', 'utf8');
  const module = { exports: {} as SubcommandBundle };
  const evaluate = compileFunction(source, ['exports', 'require', 'module', '__filename', '__dirname'], { filename: 'tcqos:operator.cjs' });
  evaluate(module.exports, require, module, 'tcqos:operator.cjs', '/');
  return Promise.resolve(module.exports);
}
