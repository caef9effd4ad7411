/** Is CNI_NETNS a network namespace we may enter? Checked before any process is started. */
import { statfsSync, statSync } from 'node:fs';

const NSFS_MAGIC = 0x6e736673;

export type NetnsState = 'usable' | 'missing' | 'not-a-netns' | 'own';

export function netnsState(path: string): NetnsState {
  let target;
  try {
    target = statSync(path);
    if (statfsSync(path).type !== NSFS_MAGIC) return 'not-a-netns';
  } catch {
    return 'missing';
  }
  // A plugin asked to shape its own namespace would shape the node itself (its uplink included).
  const own = statSync('/proc/self/ns/net');
  if (own.ino === target.ino && own.dev === target.dev) return 'own';
  return 'usable';
}
