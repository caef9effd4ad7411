/**
 * Capped exponential back-off with jitter, for retrying the API server: each failure doubles the
 * wait up to the cap (never above it); a success starts over. The jitter (±20%) keeps a fleet of agents that lost
 * the API server at the same moment from coming back in lockstep.
 */
export interface BackoffSettings {
  readonly initialSeconds: number;
  readonly maxSeconds: number;
}

export class Backoff {
  private readonly settings: BackoffSettings;
  private readonly random: () => number;
  private failures = 0;

  constructor(settings: BackoffSettings, random: () => number = Math.random) {
    this.settings = settings;
    this.random = random;
  }

  /** The wait before the next attempt, in ms; counts one more failure. */
  next(): number {
    const base = this.settings.initialSeconds * 2 ** Math.min(this.failures, 30);
    this.failures += 1;
    return Math.round(Math.min(base * (0.8 + 0.4 * this.random()), this.settings.maxSeconds) * 1000);
  }

  reset(): void {
    this.failures = 0;
  }
}
