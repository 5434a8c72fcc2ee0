/**
 * The broker's wall clock, for what credentials bound in time: a session is closed at its token's `exp`.
 * Injected (BrokerOptions.clock) so tests move it forward instead of waiting for a token to expire;
 * production uses `systemClock`.
 */
export interface BrokerClock {
  /** Milliseconds since the epoch, as Date.now(). */
  now(): number;
  /** Calls `fn` once when this clock reaches `at` (ms since the epoch; right away if it has). Returns a cancel. */
  at(at: number, fn: () => void): () => void;
}

/** setTimeout cannot wait longer than this (~24.8 days): a later deadline is re-armed when this much has passed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Date.now(), and deadlines grouped by the whole second they fall in (rounded up), one unref'd timer per second
 * (a pending expiry never keeps the process alive).
 *
 * Why not a timer per session: Node keeps one TimersList per distinct timeout duration, and when an unref'd
 * timer is cleared its list is not freed until the duration has passed. A per-session expiry timer (its duration
 * is `exp - now` in ms, a new value for nearly every CONNECT) so left ~1 KiB behind each ended session for the
 * rest of its token's lifetime, and held one more list per live session. Token `exp` is whole seconds anyway,
 * so grouping by the second changes no expiry; the lists now number the distinct seconds, not the sessions.
 */
class SecondBuckets implements BrokerClock {
  private readonly buckets = new Map<number, Set<() => void>>();

  now(): number {
    return Date.now();
  }

  at(at: number, fn: () => void): () => void {
    const due = Math.ceil(at / 1_000) * 1_000;
    let dueFns = this.buckets.get(due);
    if (!dueFns) {
      dueFns = new Set();
      this.buckets.set(due, dueFns);
      this.arm(due);
    }
    // A wrapper of its own, so the same `fn` scheduled twice is cancelled once each.
    const entry = () => fn();
    dueFns.add(entry);
    const fns = dueFns;
    return () => {
      fns.delete(entry);
    };
  }

  private arm(due: number): void {
    const timer = setTimeout(() => {
      if (Date.now() < due) return this.arm(due); // woke early: a deadline past MAX_TIMER_MS
      const fns = this.buckets.get(due);
      this.buckets.delete(due);
      for (const fn of fns ?? []) fn();
    }, Math.min(Math.max(due - Date.now(), 0), MAX_TIMER_MS));
    timer.unref();
  }
}

export const systemClock: BrokerClock = new SecondBuckets();
