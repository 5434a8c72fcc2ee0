import { systemClock, type BrokerClock } from '../../broker/clock.ts';

/**
 * A clock a test moves forward by hand, for the broker (BrokerOptions.clock) and the sidecar
 * (SidecarOptions.clock, through `date`): real time plus an offset that `advance` raises. What is due by the
 * moved clock runs at once, so a token expiry is reached without waiting for it.
 */
export class SteppedClock implements BrokerClock {
  private offset = 0;
  private readonly pending = new Set<{ at: number; run: () => void }>();

  readonly now = (): number => Date.now() + this.offset;
  /** The same time as a Date (the sidecar's clock). */
  readonly date = (): Date => new Date(this.now());

  at(at: number, fn: () => void): () => void {
    const entry = { at, run: () => this.pending.delete(entry) && fn() };
    this.pending.add(entry);
    // Also due as real time passes (the offset as of now).
    const cancelReal = systemClock.at(at - this.offset, entry.run);
    return () => {
      cancelReal();
      this.pending.delete(entry);
    };
  }

  /** Moves the clock `ms` forward and runs what became due, in time order. */
  advance(ms: number): void {
    this.offset += ms;
    const now = this.now();
    for (const e of [...this.pending].sort((a, b) => a.at - b.at)) if (e.at <= now) e.run();
  }
}
