/**
 * What the sessions of equal grants share in the broker (held connections are most of its memory): the topic
 * view and its reserve, the limit state of sessions without a rate of their own, and the decision caches'
 * compute functions. Shared state is read-only: every session still decides as before.
 */
import { describe, expect, it } from 'vitest';
import { DecisionCache } from '../broker/decision-cache.ts';
import { LimitCounters } from '../broker/limits/limit-counters.ts';
import { RetainedQuota } from '../broker/limits/retained-quota.ts';
import { LimitRuntime } from '../broker/limits/session-limits.ts';
import { decideForward, decidePublish, sessionStateFor } from '../broker/session-state.ts';
import type { SessionGrant } from '../shared/broker-wire.ts';
import type { EffectiveLimits } from '../shared/limits.ts';
import { fleetGrant, NO_SESSION_LIMITS } from './helpers/grants.ts';

const NONE = NO_SESSION_LIMITS;
const LIMITS: EffectiveLimits = { session: NONE, subtrees: [{ scopeId: 'scope_fleet', maxSessions: null, messagesPerSecond: 100, bytesPerSecond: null, retainedMessages: 10, retainedBytes: null }] };
const grant = (actor: string, over: Partial<SessionGrant> = {}): SessionGrant => fleetGrant(actor, { limits: LIMITS, ...over });
const runtime = () => new LimitRuntime({ maxPacketBytes: 1 << 20, maxSubscriptionsPerSession: 100, maxQueuedMessages: 1000, retainedMessagesPerTenant: 1000, retainedBytesPerTenant: 1 << 20 }, new RetainedQuota(), new LimitCounters());

describe('session state sharing', () => {
  it('sessions of one topic view share its view and reserve, and each decides in its own view', () => {
    const a = sessionStateFor(grant('actor_a'), 16);
    const b = sessionStateFor(grant('actor_b'), 16);
    expect(b.view).toBe(a.view);
    expect(b.reserve).toBe(a.reserve);
    expect(a.reserve).toEqual({ bytes: 'fleet'.length + 1, levels: 1 });
    const depot = sessionStateFor(grant('actor_c', { namespace: 'depot' }), 16);
    expect(depot.view).not.toBe(a.view);
    expect(depot.view).toEqual({ mount: '$sg/project_1', namespace: 'depot' });
    expect(decidePublish(a, 'fleet/t')).toBe('$sg/project_1/fleet/fleet/t');
    expect(decidePublish(depot, 'fleet/t')).toBe('$sg/project_1/fleet/depot/t');
    expect(decideForward(depot, '$sg/project_1/fleet/depot/t')).toBe('fleet/t');
    expect(decideForward(depot, '$sg/project_1/fleet/fleet/t')).toBeNull();
  });

  it('a session keeps one publish and one forward cache of its own (made at first use)', () => {
    const a = sessionStateFor(grant('actor_a'), 16);
    const b = sessionStateFor(grant('actor_a'), 16);
    expect(a.publishDecisions).toBe(a.publishDecisions);
    expect(a.forwardDecisions).toBe(a.forwardDecisions);
    expect(a.publishDecisions).not.toBe(b.publishDecisions);
    decidePublish(a, 'fleet/t');
    decidePublish(a, 'fleet/t');
    decideForward(a, '$sg/project_1/fleet/fleet/t');
    expect([a.publishDecisions.missCount, a.publishDecisions.hitCount, a.forwardDecisions.missCount]).toEqual([1, 1, 1]);
    expect([b.publishDecisions.missCount, b.forwardDecisions.missCount]).toEqual([0, 0]);
  });

  it('sessions of equal grant limits without a rate of their own share one limit state; a session rate keeps its own', () => {
    const limits = runtime();
    const first = limits.forSession(grant('actor_a'));
    expect(limits.forSession(grant('actor_b'))).toBe(first);
    expect(first.subtreeRates).toHaveLength(1);
    expect(first.retainBounds.map((b) => b.key)).toEqual(['tenant:tenant_1', 'scope_fleet']);
    // Another tenant with the very same limits object: its own state (counters and retained bounds are per tenant).
    const other = limits.forSession(grant('actor_x', { tenantId: 'tenant_2' }));
    expect(other).not.toBe(first);
    expect(other.retainBounds[0]!.key).toBe('tenant:tenant_2');
    // A per-session rate is a pacing schedule of that session alone.
    const paced: EffectiveLimits = { ...LIMITS, session: { ...NONE, messagesPerSecond: 5 } };
    const p1 = limits.forSession(grant('actor_a', { limits: paced }));
    const p2 = limits.forSession(grant('actor_b', { limits: paced }));
    expect(p1).not.toBe(p2);
    expect(p1.sessionRate).not.toBe(p2.sessionRate);
    // The subtree's rate is the tree's shared pair in every state.
    expect(p1.subtreeRates[0]).toBe(first.subtreeRates[0]);
  });

  it('a shared limit state still sets the subtree rate its grant states', () => {
    const limits = runtime();
    const first = limits.forSession(grant('actor_a'));
    const pair = first.subtreeRates[0]!;
    // A newer grant lowers the subtree's rate to 1/s...
    limits.forSession(grant('actor_b', { limits: { session: NONE, subtrees: [{ ...LIMITS.subtrees[0]!, messagesPerSecond: 1 }] } }));
    expect(pair.take(0, 0)).toBe(0);
    expect(pair.take(0, 0)).toBeGreaterThan(0);
    // ...and a session of the first grant sets it back to 100/s, as a state made anew would.
    expect(limits.forSession(grant('actor_c'))).toBe(first);
    const fresh = runtime().forSession(grant('actor_c')).subtreeRates[0]!;
    for (let i = 0; i < 50; i++) expect(pair.take(0, 10_000)).toBe(fresh.take(0, 10_000));
  });
});

describe('DecisionCache owner', () => {
  it('passes its owner to the shared compute function', () => {
    const compute = (key: string, owner: { prefix: string }) => `${owner.prefix}${key}`;
    const a = new DecisionCache(4, compute, { prefix: 'a/' });
    const b = new DecisionCache(4, compute, { prefix: 'b/' });
    expect(a.decide('x')).toBe('a/x');
    expect(b.decide('x')).toBe('b/x');
    expect(a.decide('x')).toBe('a/x');
    expect(a.hitCount).toBe(1);
  });
});
