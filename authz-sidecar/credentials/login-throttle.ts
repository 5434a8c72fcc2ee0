/**
 * Slows down repeated failed MQTT logins, per client address and per username *from that address*: after
 * `freeAttempts` failures within `windowMs`, further attempts from that address (or for that username from
 * that address) are refused without checking credentials until the back-off (doubling, capped) has passed.
 * The username block is keyed by address so that nobody can lock out a holder of valid credentials by
 * failing with its username from elsewhere (issue 11.11); guessing from many addresses gains nothing against
 * 256-bit secrets and signed tokens. A success clears the username's entry for that address.
 * Bounded: the oldest entries are dropped past `maxEntries`, so an attacker cannot grow memory without limit.
 */
export interface LoginThrottleOptions {
  freeAttempts?: number;
  windowMs?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  maxEntries?: number;
  clock?: () => number;
}

interface Entry {
  failures: number;
  firstAt: number;
  blockedUntil: number;
}

export class LoginThrottle {
  private readonly entries = new Map<string, Entry>();
  private readonly o: Required<LoginThrottleOptions>;

  constructor(options: LoginThrottleOptions = {}) {
    this.o = {
      freeAttempts: options.freeAttempts ?? 5,
      windowMs: options.windowMs ?? 60_000,
      baseDelayMs: options.baseDelayMs ?? 1_000,
      maxDelayMs: options.maxDelayMs ?? 60_000,
      maxEntries: options.maxEntries ?? 100_000,
      clock: options.clock ?? Date.now,
    };
  }

  /** Milliseconds the attempt must wait (0 = go ahead). */
  blockedFor(address: string | undefined, username: string): number {
    const now = this.o.clock();
    let wait = 0;
    for (const key of keys(address, username)) {
      const e = this.entries.get(key);
      if (e && e.blockedUntil > now) wait = Math.max(wait, e.blockedUntil - now);
    }
    return wait;
  }

  fail(address: string | undefined, username: string): void {
    const now = this.o.clock();
    for (const key of keys(address, username)) {
      let e = this.entries.get(key);
      if (!e || now - e.firstAt > this.o.windowMs) e = { failures: 0, firstAt: now, blockedUntil: 0 };
      e.failures++;
      if (e.failures > this.o.freeAttempts) {
        const delay = Math.min(this.o.maxDelayMs, this.o.baseDelayMs * 2 ** (e.failures - this.o.freeAttempts - 1));
        e.blockedUntil = now + delay;
      }
      this.entries.delete(key);
      this.entries.set(key, e);
    }
    while (this.entries.size > this.o.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  succeed(address: string | undefined, username: string): void {
    this.entries.delete(userKey(address, username));
  }
}

/** Without an address (it should always be known), the username alone is the key: the old, stricter rule. */
function userKey(address: string | undefined, username: string): string {
  return `u:${address ?? ''}\u0000${username}`;
}

function keys(address: string | undefined, username: string): string[] {
  return address ? [`a:${address}`, userKey(address, username)] : [userKey(address, username)];
}
