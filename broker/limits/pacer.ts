/**
 * A rate as a pacing schedule (GCRA, the "virtual scheduling" form of a token bucket): each unit of cost
 * moves a theoretical arrival time forward by 1/rate; a request may pass once that time is within one burst
 * of now. `take` commits the cost and says how long to wait before it may pass (the caller waits: nothing is
 * dropped), `tryTake` commits only when no wait is needed (the caller drops otherwise).
 *
 * Successive `take`s on one pacer answer non-decreasing delays, so packets delayed by their answers keep
 * their order. The clock is injected (ms) so tests never sleep.
 */
export class Pacer {
  private tat = 0;
  private intervalMs: number;
  private burstMs: number;

  constructor(
    private ratePerSecond: number,
    /** Seconds of rate that may pass at once after a quiet period. */
    private readonly burstSeconds = 1,
  ) {
    this.intervalMs = 1_000 / ratePerSecond;
    this.burstMs = burstSeconds * 1_000;
  }

  get rate(): number {
    return this.ratePerSecond;
  }

  /** A limit changed while sessions run: the schedule already committed stays, new costs use the new rate. */
  setRate(ratePerSecond: number): void {
    if (ratePerSecond === this.ratePerSecond) return;
    this.ratePerSecond = ratePerSecond;
    this.intervalMs = 1_000 / ratePerSecond;
    this.burstMs = this.burstSeconds * 1_000;
  }

  /** Commits `cost` and answers the wait (ms) before it may pass; 0 = now. */
  take(cost: number, now: number): number {
    const start = this.tat > now ? this.tat : now;
    this.tat = start + cost * this.intervalMs;
    const wait = this.tat - this.burstMs - now;
    return wait > 0 ? wait : 0;
  }

  /** Commits `cost` only if it may pass now. */
  tryTake(cost: number, now: number): boolean {
    const start = this.tat > now ? this.tat : now;
    const next = start + cost * this.intervalMs;
    if (next - this.burstMs > now) return false;
    this.tat = next;
    return true;
  }
}

/** A messages/s and a bytes/s pacer used together (either may be absent). */
export class RatePair {
  private messages: Pacer | null = null;
  private bytes: Pacer | null = null;

  constructor(messagesPerSecond: number | null, bytesPerSecond: number | null) {
    this.set(messagesPerSecond, bytesPerSecond);
  }

  get active(): boolean {
    return this.messages !== null || this.bytes !== null;
  }

  set(messagesPerSecond: number | null, bytesPerSecond: number | null): void {
    this.messages = update(this.messages, messagesPerSecond);
    this.bytes = update(this.bytes, bytesPerSecond);
  }

  take(bytes: number, now: number): number {
    const a = this.messages ? this.messages.take(1, now) : 0;
    const b = this.bytes ? this.bytes.take(bytes, now) : 0;
    return a > b ? a : b;
  }

  /** Both pacers must agree to pass now; otherwise neither is charged. */
  tryTake(bytes: number, now: number): boolean {
    if (this.messages && this.bytes) {
      // Check both before charging either: a probe on a copy would allocate; instead undo by design: charge
      // messages first only when bytes would pass too.
      if (!this.bytes.tryTake(bytes, now)) return false;
      if (!this.messages.tryTake(1, now)) {
        // The byte charge stands (a refused message still consumed the link); rare and conservative.
        return false;
      }
      return true;
    }
    if (this.messages) return this.messages.tryTake(1, now);
    if (this.bytes) return this.bytes.tryTake(bytes, now);
    return true;
  }
}

function update(p: Pacer | null, rate: number | null): Pacer | null {
  if (rate === null || rate <= 0) return null;
  if (!p) return new Pacer(rate);
  p.setRate(rate);
  return p;
}
