/**
 * The broker's grant interner: held sessions share the objects of equal grants (a held connection's memory is
 * mostly what it keeps), and sharing never changes a grant nor keeps one alive.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { GrantInterner, sameJson } from '../broker/grant-interner.ts';
import { WeakValues } from '../broker/weak-values.ts';
import type { SessionGrant } from '../shared/broker-wire.ts';
import { fleetGrant } from './helpers/grants.ts';

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;

/** A grant as parsed from its own sidecar answer: nothing shared with any other. */
function parsed(actor: string, over: Partial<SessionGrant> = {}): SessionGrant {
  const grant = fleetGrant(actor, { expiresAt: 1_900_000_000_000, revision: 7, dependsOn: [`actor:${actor}`, 'scope:scope_fleet'], ...over });
  return JSON.parse(JSON.stringify(grant)) as SessionGrant;
}

describe('GrantInterner', () => {
  it('gives the sessions of one actor one grant object, or copies that share every part when only the expiry differs', () => {
    const interner = new GrantInterner();
    const first = interner.intern(parsed('actor_a'));
    const second = parsed('actor_a');
    expect(interner.intern(second)).toBe(first);
    const later = interner.intern(parsed('actor_a', { expiresAt: 1_900_000_060_000 }));
    expect(later).not.toBe(first);
    expect(later).toEqual({ ...first, expiresAt: 1_900_000_060_000 });
    expect(later.apps).toBe(first.apps);
    expect(later.limits).toBe(first.limits);
    expect(later.dependsOn).toBe(first.dependsOn);
    // The earlier grant is unchanged (grants are shared, never written).
    expect(first.expiresAt).toBe(1_900_000_000_000);
  });

  it('keeps a grant that differs in anything but the expiry as it is, only equal parts shared', () => {
    const interner = new GrantInterner();
    const first = interner.intern(parsed('actor_a'));
    const newer = interner.intern(parsed('actor_a', { revision: 8 }));
    expect(newer).not.toBe(first);
    expect(newer.revision).toBe(8);
    const moreApps = parsed('actor_a', { revision: 8, apps: [...first.apps, { appId: 'app_2', slug: 'other', mode: 'open', publish: ['other/#'], subscribe: ['other/#'] }] });
    const interned = interner.intern(moreApps);
    expect(interned).toEqual(moreApps);
    expect(interned.apps).not.toBe(first.apps);
    expect(interned.limits).toBe(newer.limits);
    const delegated = interner.intern(parsed('actor_a', { revision: 8, onBehalfOf: 'subject_b' }));
    expect(delegated.onBehalfOf).toBe('subject_b');
    expect(delegated).not.toBe(newer);
  });

  it('shares the apps, limits and names of actors in one topic view when they are equal', () => {
    const interner = new GrantInterner();
    const a = interner.intern(parsed('actor_a'));
    const b = interner.intern(parsed('actor_b'));
    expect(b).toEqual(parsed('actor_b'));
    expect(b.apps).toBe(a.apps);
    expect(b.limits).toBe(a.limits);
    expect(b.dependsOn).not.toBe(a.dependsOn);
    // Another view: nothing of the first one's.
    const elsewhere = interner.intern(parsed('actor_c', { namespace: 'depot' }));
    expect(elsewhere.apps).not.toBe(a.apps);
    expect(elsewhere.namespace).toBe('depot');
    // Same view, other apps: its own apps, the equal limits shared.
    const rbac = interner.intern(parsed('actor_d', { apps: [{ appId: 'app_1', slug: 'fleet', mode: 'rbac', publish: [], subscribe: ['fleet/#'] }] }));
    expect(rbac.apps[0]!.mode).toBe('rbac');
    expect(rbac.limits).toBe(a.limits);
  });
});

describe('WeakValues', () => {
  it('forgets a value nothing else holds', async () => {
    const values = new WeakValues<{ n: number }>();
    let held: { n: number } | null = { n: 1 };
    values.set('kept', held);
    values.set('dropped', { n: 2 });
    // WeakRef targets made in this turn survive it: the collection runs in a later one.
    await new Promise((r) => setImmediate(r));
    gc();
    expect(values.get('kept')).toBe(held);
    expect(values.get('dropped')).toBeUndefined();
    held = null;
  });
});

describe('sameJson', () => {
  it('compares JSON values deeply, keys and order included', () => {
    expect(sameJson({ a: [1, { b: null }] }, { a: [1, { b: null }] })).toBe(true);
    expect(sameJson({ a: 1 }, { a: 1, b: undefined })).toBe(false);
    expect(sameJson([1, 2], [2, 1])).toBe(false);
    expect(sameJson({ a: [] }, { a: {} })).toBe(false);
    expect(sameJson(null, {})).toBe(false);
  });
});
