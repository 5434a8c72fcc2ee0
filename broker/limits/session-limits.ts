import type { SessionGrant } from '../../shared/broker-wire.ts';
import type { EffectiveLimits, LimitName, SubtreeLimit } from '../../shared/limits.ts';
import { countLimitEvent, type LimitCounters } from './limit-counters.ts';
import { RatePair } from './pacer.ts';
import type { RetainBound, RetainedQuotaStore } from './retained-quota.ts';

/**
 * The limits of one live session, built from its grant's effective limits (SPEC §7) and the install's
 * defaults, and the decisions the publish path makes from them. Per-session bounds fall back to the
 * defaults where the scope tree sets nothing; a session's pacing schedule survives grant refreshes (a limit
 * changed while connected applies to the next publish, without forgiving what was already committed).
 */

/** Defaults with no configuration at all (README: Limits), overridable by env and by `limits`. */
export interface LimitDefaults {
  maxPacketBytes: number;
  maxSubscriptionsPerSession: number;
  maxQueuedMessages: number;
  retainedMessagesPerTenant: number;
  retainedBytesPerTenant: number;
}

export interface SessionLimitState {
  readonly tenantId: string;
  readonly maxSubscriptions: number;
  /** From the tree (the packet bound is enforced by the parser); null = none. */
  readonly maxPayloadBytes: number | null;
  readonly maxQueued: number;
  /** Per-session rate (backpressure); null = none. */
  readonly sessionRate: RatePair | null;
  /** Shared subtree rates of the scopes on the path that set one (this broker's share). */
  readonly subtreeRates: readonly RatePair[];
  readonly retainBounds: readonly RetainBound[];
  /** This tenant's throttled/dropped/refused counters. */
  readonly counters: Map<string, number>;
}

/** What the publish path does with a message after the limits: pass now, pass after a wait, drop, refuse. */
export type LimitVerdict = { pass: true; waitMs: number } | { pass: false; drop: true; limit: LimitName } | { pass: false; drop: false; limit: LimitName };

const PASS_NOW: LimitVerdict = Object.freeze({ pass: true, waitMs: 0 });

export class LimitRuntime {
  private readonly subtreeRates = new Map<string, RatePair>();
  /**
   * The limit states of sessions without a rate of their own, by the grant limits they were made from. Such a
   * state is read-only (its subtree rates are the tree's shared pairs), so the sessions of equal grants (see
   * grant-interner.ts) share one instead of holding ~200 B each.
   */
  private readonly shared = new WeakMap<EffectiveLimits, SessionLimitState>();

  constructor(
    readonly defaults: Readonly<LimitDefaults>,
    readonly retained: RetainedQuotaStore,
    readonly counters: LimitCounters,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** The limit state of a session with this grant; `previous` (a refresh) keeps its pacing schedule. */
  forSession(grant: SessionGrant, previous?: SessionLimitState): SessionLimitState {
    const { session, subtrees } = grant.limits;
    const ownRate = session.messagesPerSecond !== null || session.bytesPerSecond !== null;
    if (!ownRate) {
      const known = this.shared.get(grant.limits);
      if (known && known.tenantId === grant.tenantId) {
        // The tree's rates as this grant states them, as a state made anew would set them.
        for (const s of subtrees) if (s.messagesPerSecond !== null || s.bytesPerSecond !== null) this.subtreeRate(s);
        return known;
      }
    }
    let sessionRate = previous?.sessionRate ?? null;
    if (ownRate) {
      if (sessionRate) sessionRate.set(session.messagesPerSecond, session.bytesPerSecond);
      else sessionRate = new RatePair(session.messagesPerSecond, session.bytesPerSecond);
    } else sessionRate = null;

    const subtreeRates: RatePair[] = [];
    const retainBounds: RetainBound[] = [];
    let tenantRetainSet = false;
    for (const s of subtrees) {
      if (s.messagesPerSecond !== null || s.bytesPerSecond !== null) subtreeRates.push(this.subtreeRate(s));
      if (s.retainedMessages !== null || s.retainedBytes !== null) {
        retainBounds.push({ key: s.scopeId, maxMessages: s.retainedMessages, maxBytes: s.retainedBytes });
        if (s.scopeId === `scope_${grant.tenantId}`) tenantRetainSet = true;
      }
    }
    // The install's per-tenant default holds unless the tenant sets its own retained limits.
    if (!tenantRetainSet) {
      retainBounds.unshift({ key: `tenant:${grant.tenantId}`, maxMessages: this.defaults.retainedMessagesPerTenant, maxBytes: this.defaults.retainedBytesPerTenant });
    }
    const state: SessionLimitState = {
      tenantId: grant.tenantId,
      maxSubscriptions: session.maxSubscriptionsPerSession ?? this.defaults.maxSubscriptionsPerSession,
      maxPayloadBytes: session.maxPayloadBytes,
      maxQueued: session.maxQueuedMessages ?? this.defaults.maxQueuedMessages,
      sessionRate,
      subtreeRates,
      retainBounds,
      counters: this.counters.forTenant(grant.tenantId),
    };
    if (!ownRate) this.shared.set(grant.limits, state);
    return state;
  }

  /** The shared rate of a subtree (this broker's share), set to what `s` states. */
  private subtreeRate(s: SubtreeLimit): RatePair {
    let pair = this.subtreeRates.get(s.scopeId);
    if (pair) pair.set(s.messagesPerSecond, s.bytesPerSecond);
    else this.subtreeRates.set(s.scopeId, (pair = new RatePair(s.messagesPerSecond, s.bytesPerSecond)));
    return pair;
  }

  /**
   * A PUBLISH the topic decision allowed, against the tree's limits, in order: payload size, subtree rate,
   * session rate, retained quota (last, so a dropped message never takes quota). Counted here.
   */
  decide(limits: SessionLimitState, internalTopic: string, qos: number, retain: boolean, payloadBytes: number): LimitVerdict | Promise<LimitVerdict> {
    if (limits.maxPayloadBytes !== null && payloadBytes > limits.maxPayloadBytes) return this.refuse(limits, 'maxPayloadBytes');
    if (limits.subtreeRates.length === 0 && limits.sessionRate === null) return this.retain(limits, internalTopic, retain, payloadBytes, PASS_NOW);

    const now = this.clock();
    let waitMs = 0;
    for (const pair of limits.subtreeRates) {
      if (qos === 0) {
        // QoS 0 over the subtree's shared rate is dropped (it is never acknowledged, so nothing acknowledged is lost).
        if (!pair.tryTake(payloadBytes, now)) {
          countLimitEvent(limits.counters, 'dropped', 'publishRate.perSubtree');
          return { pass: false, drop: true, limit: 'publishRate.perSubtree' };
        }
      } else {
        // QoS 1/2 wait (the PUBACK/PUBREC is only sent once the message passed): never acknowledged then dropped.
        const w = pair.take(payloadBytes, now);
        if (w > waitMs) waitMs = w;
      }
    }
    if (waitMs > 0) countLimitEvent(limits.counters, 'throttled', 'publishRate.perSubtree');
    if (limits.sessionRate) {
      const w = limits.sessionRate.take(payloadBytes, now);
      if (w > 0) countLimitEvent(limits.counters, 'throttled', 'publishRate.perSession');
      if (w > waitMs) waitMs = w;
    }
    return this.retain(limits, internalTopic, retain, payloadBytes, waitMs > 0 ? { pass: true, waitMs } : PASS_NOW);
  }

  /** The retained quota, last; in Redis mode its answer comes from Redis (a Promise, retained publishes only). */
  private retain(limits: SessionLimitState, internalTopic: string, retain: boolean, payloadBytes: number, verdict: LimitVerdict): LimitVerdict | Promise<LimitVerdict> {
    if (!retain) return verdict;
    const admitted = this.retained.admit(internalTopic, payloadBytes, limits.retainBounds);
    if (admitted === true) return verdict;
    if (admitted === false) return this.refuse(limits, 'retained');
    return admitted.then((ok) => (ok ? verdict : this.refuse(limits, 'retained')));
  }

  refuse(limits: SessionLimitState, limit: LimitName): LimitVerdict {
    countLimitEvent(limits.counters, 'refused', limit);
    return { pass: false, drop: false, limit };
  }
}
