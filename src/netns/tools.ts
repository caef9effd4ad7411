/**
 * Absolute paths of the programs tcqos runs. Runtimes may call plugins with an empty PATH, and a
 * root plugin should not run whatever `tc` a PATH happens to name first.
 */
import { accessSync, constants } from 'node:fs';

export type Tool = 'ip' | 'tc' | 'nsenter' | 'flock';
/** Every tool tcqos runs, for STATUS. */
export const TOOLS: readonly Tool[] = ['ip', 'tc', 'nsenter', 'flock'];
const SEARCH_DIRS = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];
const found = new Map<Tool, string>();

export class ToolMissingError extends Error {}

export function toolPath(tool: Tool): string {
  const known = found.get(tool);
  if (known) return known;
  for (const dir of SEARCH_DIRS) {
    const candidate = `${dir}/${tool}`;
    try {
      accessSync(candidate, constants.X_OK);
      found.set(tool, candidate);
      return candidate;
    } catch {
      // not here; try the next directory
    }
  }
  const packageName = tool === 'nsenter' || tool === 'flock' ? 'util-linux' : 'iproute2';
  throw new ToolMissingError(`${tool} not found in ${SEARCH_DIRS.join(', ')} (install ${packageName})`);
}

/** The environment given to every child: nothing inherited but a fixed PATH and the C locale. */
export const CHILD_ENV = { PATH: SEARCH_DIRS.join(':'), LC_ALL: 'C' };
