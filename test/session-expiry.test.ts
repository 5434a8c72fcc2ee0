/**
 * Token expiry of live sessions (SessionControl): a session outlives no token. Sessions are grouped by their
 * token's expiry, one clock deadline per distinct expiry (held connections are most of the broker's memory),
 * and a session that ended before its expiry is neither closed again nor kept.
 */
import type { Client } from 'aedes';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { BrokerClock } from '../broker/clock.ts';
import { LimitCounters } from '../broker/limits/limit-counters.ts';
import { OfflineQueues } from '../broker/limits/offline-queues.ts';
import { RetainedQuota } from '../broker/limits/retained-quota.ts';
import { LimitRuntime } from '../broker/limits/session-limits.ts';
import { createBrokerMetrics } from '../broker/metrics.ts';
import { SessionControl } from '../broker/session-control.ts';
import { SessionRegistry } from '../broker/session-registry.ts';
import type { SessionGrant } from '../shared/broker-wire.ts';
import { NO_LIMITS } from '../shared/limits.ts';

/** A clock whose deadlines run when the test says, counting those asked for and cancelled. */
class ManualClock implements BrokerClock {
  t = 1_000_000;
  readonly deadlines = new Map<number, Array<() => void>>();
  asked = 0;
  cancelled = 0;
  now = () => this.t;
  at(at: number, fn: () => void): () => void {
    this.asked++;
    if (at <= this.t) {
      fn();
      return () => undefined;
    }
    const fns = this.deadlines.get(at) ?? [];
    fns.push(fn);
    this.deadlines.set(at, fns);
    return () => {
      this.cancelled++;
      fns.splice(fns.indexOf(fn), 1);
    };
  }
  advanceTo(t: number): void {
    this.t = t;
    for (const [at, fns] of [...this.deadlines].sort((a, b) => a[0] - b[0])) {
      if (at > t) continue;
      this.deadlines.delete(at);
      for (const fn of fns) fn();
    }
  }
}

function fakeClient(id: string): Client & { closes: number } {
  const c = { id, clean: true, closed: false, closes: 0, will: null, _will: null, close() {
    c.closes++;
    c.closed = true;
  } };
  return c as unknown as Client & { closes: number };
}
const grant = (actorId: string, expiresAt: number | null): SessionGrant => ({ actorId, subjectId: 's', tenantId: 't', projectId: 'p', accessScopeId: 'sc', mount: '$sg/p', namespace: '', apps: [], expiresAt, revision: 1, dependsOn: [`actor:${actorId}`], limits: NO_LIMITS });

function control(clock: BrokerClock) {
  const registry = new SessionRegistry();
  const counters = new LimitCounters();
  const limits = new LimitRuntime({ maxPacketBytes: 1 << 20, maxSubscriptionsPerSession: 10, maxQueuedMessages: 10, retainedMessagesPerTenant: 10, retainedBytesPerTenant: 1 << 20 }, new RetainedQuota(), counters);
  const sessions = new SessionControl(registry, 16, createBrokerMetrics(), pino({ level: 'silent' }), limits, new OfflineQueues(10, counters), clock);
  return { registry, sessions };
}

describe('SessionControl token expiry', () => {
  it('closes every session at its token’s expiry, with one clock deadline per distinct expiry', () => {
    const clock = new ManualClock();
    const { registry, sessions } = control(clock);
    const [a, b, c, forever] = ['a', 'b', 'c', 'forever'].map(fakeClient) as [ReturnType<typeof fakeClient>, ReturnType<typeof fakeClient>, ReturnType<typeof fakeClient>, ReturnType<typeof fakeClient>];
    sessions.start(a, grant('a', 1_005_000));
    sessions.start(b, grant('b', 1_005_000));
    sessions.start(c, grant('c', 1_009_000));
    sessions.start(forever, grant('forever', null));
    expect(clock.asked).toBe(2);
    clock.advanceTo(1_005_000);
    expect([a.closes, b.closes, c.closes]).toEqual([1, 1, 0]);
    expect(registry.size).toBe(2);
    clock.advanceTo(1_010_000);
    expect([a.closes, b.closes, c.closes, forever.closes]).toEqual([1, 1, 1, 0]);
    expect(registry.size).toBe(1);
  });

  it('a session that ended before its expiry is not closed; the deadline goes with the last session of its expiry', () => {
    const clock = new ManualClock();
    const { registry, sessions } = control(clock);
    const [a, b] = [fakeClient('a'), fakeClient('b')];
    sessions.start(a, grant('a', 1_005_000));
    sessions.start(b, grant('b', 1_005_000));
    sessions.ended(a);
    sessions.ended(a);
    expect(clock.cancelled).toBe(0);
    sessions.ended(b);
    expect(clock.cancelled).toBe(1);
    clock.advanceTo(1_006_000);
    expect([a.closes, b.closes]).toEqual([0, 0]);
    expect(registry.size).toBe(0);
  });

  it('a token already expired when the session starts closes it at once', () => {
    const clock = new ManualClock();
    const { registry, sessions } = control(clock);
    const late = fakeClient('late');
    sessions.start(late, grant('late', clock.t - 1));
    expect(late.closes).toBe(1);
    expect(registry.size).toBe(0);
    // A later session with the same (past) expiry is closed too, not added to a group that already ran.
    const later = fakeClient('later');
    sessions.start(later, grant('later', clock.t - 1));
    expect(later.closes).toBe(1);
  });
});
