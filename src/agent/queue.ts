/**
 * Work on pods one at a time, each pod queued at most once: a burst of edits to one pod while it
 * waits becomes one pass over its latest state, and two passes over one pod never overlap.
 */
export class KeyedQueue {
  private readonly work: (key: string) => Promise<void>;
  private readonly onError: (key: string, error: unknown) => void;
  private readonly pending = new Set<string>();
  private running: Promise<void> | undefined;

  constructor(work: (key: string) => Promise<void>, onError: (key: string, error: unknown) => void) {
    this.work = work;
    this.onError = onError;
  }

  add(key: string): void {
    this.pending.add(key);
    this.running ??= this.drain();
  }

  /** Resolves when nothing is queued or running. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    // a Set iterates in insertion order: the first queued goes first
    for (const key of this.pending) {
      this.pending.delete(key);
      try {
        await this.work(key);
      } catch (error) {
        this.onError(key, error);
      }
    }
    this.running = undefined;
  }
}
