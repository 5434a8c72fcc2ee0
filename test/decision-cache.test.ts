/** The broker's per-session decision cache: bounded, never stale, and out of the way when topics never repeat. */
import { describe, expect, it } from 'vitest';
import { DecisionCache } from '../broker/decision-cache.ts';

describe('DecisionCache', () => {
  it('answers repeated keys from the cache, within its bound', () => {
    let computed = 0;
    const cache = new DecisionCache(4, (k) => (computed++, k.toUpperCase()));
    for (let round = 0; round < 10; round++) for (const k of ['a', 'b', 'c']) expect(cache.decide(k)).toBe(k.toUpperCase());
    expect(computed).toBe(3);
    expect(cache.hitCount).toBe(27);
    for (let i = 0; i < 100; i++) cache.decide(`k${i % 4}`);
    expect(cache.entries).toBeLessThanOrEqual(4);
  });

  it('stops caching keys that never come back, and resumes afterwards', () => {
    let computed = 0;
    const cache = new DecisionCache(8, (k) => (computed++, k.length));
    for (let i = 0; i < 9; i++) cache.decide(`new-${i}`);
    // Full with no hits: bypassed, nothing more is stored, every answer is still right.
    expect(cache.entries).toBe(0);
    for (let i = 0; i < 64; i++) expect(cache.decide(`x-${i}`)).toBe(`x-${i}`.length);
    expect(cache.entries).toBe(0);
    // After the bypass window, repeated keys are cached again.
    cache.decide('steady');
    cache.decide('steady');
    expect(cache.entries).toBe(1);
    expect(computed).toBe(9 + 64 + 1);
  });
});
