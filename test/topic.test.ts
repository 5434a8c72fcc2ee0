/** The pure topic rules shared by broker and sidecar: checks, rewrite both ways, matching and covering. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkClientTopic, filterCovers, mqttMatch, toClient, toInternal, TOPIC_LIMITS } from '../shared/topic.ts';

const scoped = { mount: '$sg/project_a', namespace: 'acme-corp' };
const nested = { mount: '$sg/project_a', namespace: 'production/downtown-tower' };
const projectLevel = { mount: '$sg/project_a', namespace: '' };

describe('checkClientTopic', () => {
  it('accepts ordinary topics and filters, returning the app', () => {
    expect(checkClientTopic('my-app/chat/messages', 'name')).toEqual({ ok: true, app: 'my-app' });
    expect(checkClientTopic('my-app/+/x/#', 'filter')).toEqual({ ok: true, app: 'my-app' });
    expect(checkClientTopic('my-app', 'name')).toEqual({ ok: true, app: 'my-app' });
  });
  it.each([
    ['', 'name', 'empty'],
    ['$SYS/x', 'filter', 'system_topic'],
    ['$share/g/my-app/x', 'filter', 'system_topic'],
    ['#', 'filter', 'wildcard_app'],
    ['+/x', 'filter', 'wildcard_app'],
    ['my-app/#/x', 'filter', 'bad_wildcard'],
    ['my-app/a+', 'filter', 'bad_wildcard'],
    ['my-app/+', 'name', 'wildcard_in_name'],
    ['my-app//x', 'name', 'empty_level'],
    ['/my-app', 'name', 'empty_level'],
    ['my-app/', 'filter', 'empty_level'],
    ['my-app/../x', 'name', 'dot_level'],
    ['my-app/./x', 'name', 'dot_level'],
    ['my-app/a\u0000', 'name', 'bad_character'],
    ['my-app/\u001b[31m', 'name', 'bad_character'],
    ['my-app/\ud800', 'name', 'bad_character'],
    [`my-app/${'x'.repeat(TOPIC_LIMITS.maxBytes)}`, 'name', 'too_long'],
    [`my-app/${'é'.repeat(600)}`, 'name', 'too_long'],
    [Array.from({ length: TOPIC_LIMITS.maxLevels + 1 }, () => 'a').join('/'), 'name', 'too_deep'],
  ] as const)('refuses %j as a %s (%s)', (topic, kind, reason) => {
    expect(checkClientTopic(topic, kind)).toEqual({ ok: false, reason });
  });
});

describe('toInternal / toClient', () => {
  it('rewrites as SPEC §4 says', () => {
    expect(toInternal(scoped, 'my-app/chat/messages')).toBe('$sg/project_a/my-app/acme-corp/chat/messages');
    expect(toInternal(nested, 'my-app/x')).toBe('$sg/project_a/my-app/production/downtown-tower/x');
    expect(toInternal(projectLevel, 'my-app/acme-corp/chat')).toBe('$sg/project_a/my-app/acme-corp/chat');
    expect(toInternal(scoped, 'my-app')).toBe('$sg/project_a/my-app/acme-corp');
    expect(toClient(projectLevel, '$sg/project_a/my-app/acme-corp/chat/messages')).toBe('my-app/acme-corp/chat/messages');
  });
  it('shows nothing outside the view', () => {
    expect(toClient(scoped, '$sg/project_a/my-app/globex/chat')).toBeNull();
    expect(toClient(scoped, '$sg/project_a/my-app/acme-corp2/chat')).toBeNull();
    expect(toClient(scoped, '$sg/project_b/my-app/acme-corp/chat')).toBeNull();
    expect(toClient(scoped, '$sg/project_ab/my-app/acme-corp/chat')).toBeNull();
    expect(toClient(projectLevel, '$sg/project_b/my-app/x')).toBeNull();
    expect(toClient(scoped, '$SYS/broker/heartbeat')).toBeNull();
    expect(toClient(nested, '$sg/project_a/my-app/production/x')).toBeNull();
  });
  it('toClient inverts toInternal for every valid topic and view (property)', () => {
    const level = fc.stringMatching(/^[a-z0-9_-]{1,8}$/);
    fc.assert(
      fc.property(fc.array(level, { minLength: 1, maxLength: 6 }), fc.array(level, { maxLength: 3 }), (levels, ns) => {
        const view = { mount: '$sg/project_p', namespace: ns.join('/') };
        const topic = levels.join('/');
        expect(toClient(view, toInternal(view, topic))).toBe(topic);
      }),
      { numRuns: 500 },
    );
  });
  it('no valid topic of one scope lands in the internal space of a sibling scope (property)', () => {
    const level = fc.stringMatching(/^[a-z0-9._-]{1,6}$/);
    fc.assert(
      fc.property(fc.array(level, { minLength: 1, maxLength: 6 }), level, level, (levels, a, b) => {
        fc.pre(a !== b);
        const topic = levels.join('/');
        if (!checkClientTopic(topic, 'name').ok) return;
        const internal = toInternal({ mount: '$sg/project_p', namespace: a }, topic);
        expect(toClient({ mount: '$sg/project_p', namespace: b }, internal)).toBeNull();
      }),
      { numRuns: 1000 },
    );
  });
});

describe('mqttMatch and filterCovers', () => {
  it.each([
    ['a/#', 'a', true],
    ['a/#', 'a/b/c', true],
    ['a/+', 'a/b', true],
    ['a/+', 'a/b/c', false],
    ['a/+/c', 'a/b/c', true],
    ['a/b', 'a/b/c', false],
    ['#', 'anything/at/all', true],
  ])('mqttMatch(%s, %s) = %s', (f, t, expected) => {
    expect(mqttMatch(f, t)).toBe(expected);
    expect(filterCovers(f, t)).toBe(expected);
  });
  it.each([
    ['a/#', 'a/+/c', true],
    ['a/+/c', 'a/#', false],
    ['a/+', 'a/+', true],
    ['a/b', 'a/+', false],
    ['a/+/#', 'a/b/#', true],
    ['a/#', 'a/#', true],
    ['a/+', 'a/#', false],
  ])('filterCovers(%s, %s) = %s', (outer, inner, expected) => {
    expect(filterCovers(outer, inner)).toBe(expected);
  });
});

describe('checkClientTopic against a plain reference implementation (property)', () => {
  // The rules written the obvious way (regex + split): the one-pass version must agree on every input.
  // eslint-disable-next-line no-control-regex
  const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
  function reference(topic: string, kind: 'name' | 'filter'): boolean {
    if (topic.length === 0 || Buffer.byteLength(topic) > TOPIC_LIMITS.maxBytes || topic.startsWith('$') || FORBIDDEN.test(topic)) return false;
    const levels = topic.split('/');
    if (levels.length > TOPIC_LIMITS.maxLevels) return false;
    return levels.every((level, i) => {
      if (level === '' || level === '.' || level === '..') return false;
      if (!/[+#]/.test(level)) return true;
      if (kind === 'name' || level.length > 1 || i === 0) return false;
      return level === '+' || i === levels.length - 1;
    });
  }
  it('agrees on random topics and filters', () => {
    const alphabet = fc.constantFrom('a', 'b', '/', '+', '#', '.', '$', '\u0000', '\u0085', '\ud800', '\udc00', 'é', ' ');
    const topic = fc.oneof(fc.string({ unit: alphabet, maxLength: 24 }), fc.string({ unit: 'grapheme', maxLength: 24 }), fc.string({ maxLength: 40 }));
    fc.assert(
      fc.property(topic, fc.constantFrom('name' as const, 'filter' as const), (t, kind) => {
        expect(checkClientTopic(t, kind).ok).toBe(reference(t, kind));
      }),
      { numRuns: 20_000 },
    );
  });
});
