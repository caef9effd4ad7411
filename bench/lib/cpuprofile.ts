/**
 * Where a tcqos invocation spends its JavaScript time: V8 CPU profiles (NODE_OPTIONS=--cpu-prof,
 * which the single executable honours) summarised as inclusive milliseconds per function, each
 * named with the source module it came from (esbuild marks every module in the bundle with a
 * `// path` comment line).
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface Profile {
  nodes: Array<{ id: number; callFrame: CallFrame; children?: number[] }>;
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface FrameTime {
  readonly name: string;
  /** Mean inclusive ms per run. */
  readonly ms: number;
}

export interface ProfileSummary {
  readonly runs: number;
  /** Mean profiled ms per run (from V8's start to the end of the profile). */
  readonly totalMs: number;
  readonly frames: FrameTime[];
}

/** Frames every stack passes through: they say nothing about where the time goes. */
const WRAPPERS = new Set([
  '(root)', '(program)', '(idle)', 'processTicksAndRejections', 'runMicrotasks', 'embedderRunCjs', 'embedderRunEntryPoint',
  'embedderRequire', 'requireBuiltin', 'compileForInternalLoader', '__init', '__esm', '__commonJS', '__require', 'listOnTimeout', 'processTimers',
]);

/** Line (0-based) -> source module, from the bundle's `// path` markers. */
function moduleMap(bundle: string): (line: number) => string {
  const starts: Array<[number, string]> = [];
  bundle.split('\n').forEach((text, index) => {
    const found = /^\/\/ ((?:src|bin|node_modules)\/\S+)$/.exec(text);
    if (found) starts.push([index, found[1]!]);
  });
  return (line) => {
    let module = 'bundle';
    for (const [start, path] of starts) {
      if (start > line) break;
      module = path;
    }
    return module;
  };
}

export function summariseProfiles(files: readonly string[], bundlePath: string, top = 14): ProfileSummary {
  let whereIs: (line: number) => string = () => 'bundle';
  try {
    whereIs = moduleMap(readFileSync(bundlePath, 'utf8'));
  } catch {
    // no bundle to name modules by: frames keep their line numbers
  }
  const inclusive = new Map<string, number>();
  let total = 0;
  for (const file of files) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
    total += (profile.endTime - profile.startTime) / 1000;
    const byId = new Map(profile.nodes.map((node) => [node.id, node]));
    const parent = new Map<number, number>();
    for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
    const name = (frame: CallFrame): string => {
      // esbuild names a module's initialiser after the module's path
      if (/^(src|bin|node_modules)\//.test(frame.functionName)) return `module init [${frame.functionName}]`;
      const fn = frame.functionName || '(top level)';
      if (frame.url.endsWith('.cjs') || frame.url.includes('tcqos')) return `${fn} [${whereIs(frame.lineNumber)}]`;
      return frame.url ? `${fn} [${frame.url.replace(/^node:internal\//, 'node internal ')}]` : fn;
    };
    profile.samples.forEach((sample, index) => {
      const ms = (profile.timeDeltas[index] ?? 0) / 1000;
      const seen = new Set<string>();
      for (let id: number | undefined = sample; id !== undefined; id = parent.get(id)) {
        const frame = byId.get(id)?.callFrame;
        if (!frame || WRAPPERS.has(frame.functionName)) continue;
        const key = name(frame);
        if (seen.has(key)) continue;
        seen.add(key);
        inclusive.set(key, (inclusive.get(key) ?? 0) + ms);
      }
    });
  }
  const runs = files.length || 1;
  const frames = [...inclusive.entries()]
    .filter(([key]) => !key.startsWith('(top level) [bundle]'))
    .map(([key, ms]) => ({ name: key, ms: ms / runs }))
    .sort((a, b) => b.ms - a.ms)
    .slice(0, top);
  return { runs: files.length, totalMs: total / runs, frames };
}
