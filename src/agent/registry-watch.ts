/**
 * New records in the registry, as they appear (inotify through fs.watch): a pod whose sandbox was
 * added before the agent saw the pod (so before its BandwidthPolicy entry existed) is converged
 * right after its ADD instead of at the next resync. Only new file names count: a record rewritten
 * in place (every update writes one) is no news, so converging never feeds itself.
 */
import { existsSync, readdirSync, watch, type FSWatcher } from 'node:fs';
import { ensurePrivateDir } from '../state/state-dir.ts';

/** Calls `onNew` with the name of each record file created in `dir` from now on; returns a function that stops. */
export function watchNewRecords(dir: string, onNew: (fileName: string) => void, onError: (error: Error) => void): () => void {
  ensurePrivateDir(dir);
  const known = new Set(readdirSync(dir).filter((name) => name.endsWith('.json')));
  let watcher: FSWatcher;
  try {
    watcher = watch(dir, { persistent: false }, (_event, name) => {
      if (!name || !name.endsWith('.json')) return;
      if (!existsSync(`${dir}/${name}`)) {
        known.delete(name);
      } else if (!known.has(name)) {
        known.add(name);
        onNew(name);
      }
    });
  } catch (error) {
    onError(error as Error);
    return () => undefined;
  }
  watcher.on('error', onError);
  return () => watcher.close();
}
