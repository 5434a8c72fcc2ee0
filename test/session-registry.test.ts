/**
 * The broker's session index: which actors a change to a grant input concerns. Inputs are indexed per actor
 * with a count of its sessions (many held sessions of one actor cost one entry per input), so the count must
 * stay exact however often the broker reports one end.
 */
import type { Client } from 'aedes';
import { describe, expect, it } from 'vitest';
import { SessionRegistry, stateOf } from '../broker/session-registry.ts';
import { sessionStateFor } from '../broker/session-state.ts';
import type { SessionGrant } from '../shared/broker-wire.ts';
import { NO_LIMITS } from '../shared/limits.ts';

function grant(actorId: string, dependsOn: string[], tenantId = 'tenant_1'): SessionGrant {
  return { actorId, subjectId: `s_${actorId}`, tenantId, projectId: 'p', accessScopeId: 'sc', mount: '$sg/p', namespace: 'fleet', apps: [], expiresAt: null, revision: 1, dependsOn, limits: NO_LIMITS };
}
const client = () => ({}) as Client;
const state = (g: SessionGrant) => sessionStateFor(g, 4);

describe('SessionRegistry', () => {
  it('finds the actors depending on an input until the last of their sessions ends, however often an end is reported', () => {
    const registry = new SessionRegistry();
    const [a1, a2, b1] = [client(), client(), client()];
    registry.set(a1, state(grant('a', ['actor:a', 'scope:x'])));
    registry.set(a2, state(grant('a', ['actor:a', 'scope:x'])));
    registry.set(b1, state(grant('b', ['actor:b', 'scope:x'])));
    expect(registry.actorsDependingOn(['scope:x']).sort()).toEqual(['a', 'b']);
    registry.delete(a1);
    registry.delete(a1);
    registry.delete(a1);
    expect(registry.actorsDependingOn(['scope:x']).sort()).toEqual(['a', 'b']);
    expect(registry.actorsDependingOn(['actor:a'])).toEqual(['a']);
    registry.delete(a2);
    expect(registry.actorsDependingOn(['scope:x', 'actor:a'])).toEqual(['b']);
    expect(registry.size).toBe(1);
    // The state stays readable on a deleted client (in-flight packets).
    expect(stateOf(a2)?.grant.actorId).toBe('a');
  });

  it('re-indexes a refreshed session under the inputs of its new grant only', () => {
    const registry = new SessionRegistry();
    const [a1, a2] = [client(), client()];
    registry.set(a1, state(grant('a', ['actor:a', 'role:r1'])));
    registry.set(a2, state(grant('a', ['actor:a', 'role:r1'])));
    registry.set(a1, state(grant('a', ['actor:a', 'role:r2'])));
    expect(registry.actorsDependingOn(['role:r1'])).toEqual(['a']);
    expect(registry.actorsDependingOn(['role:r2'])).toEqual(['a']);
    registry.set(a2, state(grant('a', ['actor:a', 'role:r2'])));
    expect(registry.actorsDependingOn(['role:r1'])).toEqual([]);
    // A move to another tenant, then the end.
    registry.set(a1, state(grant('a', ['actor:a', 'role:r3'], 'tenant_2')));
    expect(registry.size).toBe(2);
    expect(registry.actorsDependingOn(['role:r3'])).toEqual(['a']);
    registry.delete(a1);
    registry.delete(a2);
    registry.delete(a2);
    expect(registry.actorsDependingOn(['actor:a', 'role:r2', 'role:r3'])).toEqual([]);
    expect(registry.size).toBe(0);
  });

  it('a session deleted before its refresh lands is not counted twice', () => {
    const registry = new SessionRegistry();
    const [a1, a2] = [client(), client()];
    registry.set(a1, state(grant('a', ['actor:a', 'role:r1'])));
    registry.set(a2, state(grant('a', ['actor:a', 'role:r1'])));
    registry.delete(a1);
    // A refresh applied to the ended session (it re-indexes it, as before) and then its end again.
    registry.set(a1, state(grant('a', ['actor:a', 'role:r2'])));
    registry.delete(a1);
    expect(registry.actorsDependingOn(['role:r1'])).toEqual(['a']);
    expect(registry.actorsDependingOn(['role:r2'])).toEqual([]);
    registry.delete(a2);
    expect(registry.actorsDependingOn(['actor:a', 'role:r1'])).toEqual([]);
  });
});
