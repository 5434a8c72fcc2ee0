/**
 * A session's bounded decision cache (topic → decision). Decisions are pure functions of the session grant,
 * so entries never go stale; a new grant comes with a new cache.
 *
 * Two policies keep it cheap whatever the traffic looks like:
 * - full → cleared at once (one clear per `size` inserts, instead of an eviction on every miss);
 * - when a full cache served few hits since it was last cleared (a device publishing to a new topic each
 *   time, `devices/<uuid>/telemetry`), caching is bypassed for a while: inserting keys that never come back
 *   costs more than deciding again, which is a topic check and a string concatenation.
 */
export class DecisionCache<V, O = undefined> {
  /** Made at the first decision: many held sessions never publish, and an empty Map still costs ~130 bytes. */
  private map: Map<string, V> | null = null;
  private hits = 0;
  private bypassLeft = 0;
  /** Lookups answered from the cache / decisions computed (for metrics and tests). */
  hitCount = 0;
  missCount = 0;

  /**
   * `compute(key, owner)`: the owner (a session's state) is passed rather than captured, so that the sessions'
   * caches share one compute function instead of holding a closure each.
   */
  constructor(
    private readonly size: number,
    private readonly compute: (key: string, owner: O) => V,
    private readonly owner: O = undefined as O,
  ) {}

  /** The cached decision, or computes, caches and returns it. */
  decide(key: string): V {
    const compute = this.compute;
    if (this.bypassLeft > 0) {
      this.bypassLeft--;
      this.missCount++;
      return compute(key, this.owner);
    }
    const map = (this.map ??= new Map());
    const cached = map.get(key);
    if (cached !== undefined) {
      this.hits++;
      this.hitCount++;
      return cached;
    }
    this.missCount++;
    const value = compute(key, this.owner);
    if (map.size >= this.size) {
      const reused = this.hits >= this.size / 4;
      map.clear();
      this.hits = 0;
      if (!reused) {
        this.bypassLeft = this.size * 8;
        return value;
      }
    }
    map.set(key, value);
    return value;
  }

  get entries(): number {
    return this.map?.size ?? 0;
  }
}
