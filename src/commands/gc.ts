/**
 * GC (CNI 1.1): everything tcqos creates lives inside the pod's netns and dies with it; the only
 * host-side state is lock files, and a lock outlives its owner only when that owner was killed.
 */
import { removeStaleLocks } from '../netns/lock.ts';

export async function gc(): Promise<void> {
  removeStaleLocks();
}
