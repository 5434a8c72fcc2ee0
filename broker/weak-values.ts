/**
 * A map from string keys to objects it does not keep alive: an entry lives as long as something else holds its
 * value. What the broker shares between sessions (grants, topic views) is looked up here, so that sharing never
 * makes a value outlive the last session using it.
 */
export class WeakValues<V extends object> {
  private readonly refs = new Map<string, WeakRef<V>>();
  /** Dead entries are dropped when the map reaches this size, so it is bounded by ~2 × the live values. */
  private sweepAt = MIN_SWEEP_AT;

  get(key: string): V | undefined {
    return this.refs.get(key)?.deref();
  }

  set(key: string, value: V): void {
    this.refs.set(key, new WeakRef(value));
    if (this.refs.size >= this.sweepAt) this.sweep();
  }

  /** Entries, dead ones included until the next sweep (tests). */
  get size(): number {
    return this.refs.size;
  }

  private sweep(): void {
    for (const [key, ref] of this.refs) if (ref.deref() === undefined) this.refs.delete(key);
    this.sweepAt = Math.max(MIN_SWEEP_AT, this.refs.size * 2);
  }
}

const MIN_SWEEP_AT = 1_024;
