/** FilterIndex answers exactly what matching every filter in turn answers (mqttMatch), on random filters and topics. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FilterIndex } from '../shared/filter-index.ts';
import { mqttMatch } from '../shared/topic.ts';

const level = fc.constantFrom('a', 'b', 'c', 'zone-1', 'x y', '');
const filterLevel = fc.oneof({ weight: 4, arbitrary: level }, { weight: 2, arbitrary: fc.constant('+') }, { weight: 1, arbitrary: fc.constant('#') });
const filter = fc.array(filterLevel, { minLength: 1, maxLength: 5 }).map((l) => l.join('/'));
const topic = fc.array(level, { minLength: 1, maxLength: 6 }).map((l) => l.join('/'));

describe('FilterIndex', () => {
  it('matches a topic exactly when some filter matches it', () => {
    fc.assert(
      fc.property(fc.array(filter, { maxLength: 12 }), fc.array(topic, { minLength: 1, maxLength: 10 }), (filters, topics) => {
        const index = new FilterIndex(filters);
        for (const t of topics) expect(index.matches(t), `${JSON.stringify(filters)} ~ ${t}`).toBe(filters.some((f) => mqttMatch(f, t)));
      }),
      { numRuns: 3_000 },
    );
  });

  it('knows the cases that matter by name', () => {
    const index = new FilterIndex(['app/zone-1/+', 'app/logs/#', 'app/bad/#/x', 'other']);
    expect(index.matches('app/zone-1/d7')).toBe(true);
    expect(index.matches('app/zone-1/d7/more')).toBe(false);
    expect(index.matches('app/zone-2/d7')).toBe(false);
    expect(index.matches('app/logs')).toBe(true);
    expect(index.matches('app/logs/a/b/c')).toBe(true);
    // A `#` that is not the last level is malformed: it grants nothing below it.
    expect(index.matches('app/bad/q/x')).toBe(false);
    expect(index.matches('app/bad')).toBe(false);
    expect(index.matches('other')).toBe(true);
    expect(new FilterIndex([]).matches('app/x')).toBe(false);
    expect(new FilterIndex(['#']).matches('anything/at/all')).toBe(true);
  });
});
