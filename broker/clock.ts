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

/** setTimeout cannot wait longer than this (~24.8 days): a later `at` fires after that long, early. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Date.now() and an unref'd setTimeout (a pending expiry never keeps the process alive). */
export const systemClock: BrokerClock = {
  now: () => Date.now(),
  at(at, fn) {
    const timer = setTimeout(fn, Math.min(Math.max(at - Date.now(), 0), MAX_TIMER_MS));
    timer.unref();
    return () => clearTimeout(timer);
  },
};
