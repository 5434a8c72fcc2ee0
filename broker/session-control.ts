import type { Client } from 'aedes';
import type { Logger } from 'pino';
import type { SessionGrant } from '../shared/broker-wire.ts';
import { toClient } from '../shared/topic.ts';
import { discardWill, removeStoredSubscriptions, setWillTopic, subscriptionsOf, willTopicOf } from './aedes-internals.ts';
import { systemClock, type BrokerClock } from './clock.ts';
import { GrantInterner } from './grant-interner.ts';
import type { BrokerMetrics } from './metrics.ts';
import { updateHeld } from './hooks/rewrite-subscriptions.ts';
import type { OfflineQueues } from './limits/offline-queues.ts';
import type { LimitRuntime } from './limits/session-limits.ts';
import { stateOf, type SessionRegistry } from './session-registry.ts';
import { decideSharedSubscribe, isMemberFilter, memberStillAllowed, parseMember, type SharedGroups } from './shared-subscriptions.ts';
import { decidePublish, decideSubscribe, isRefusal, sessionStateFor, subscriptionStillAllowed } from './session-state.ts';

/**
 * When (in the count of sessions started) a client's session started, on the client object like its state:
 * a WeakMap entry was ~50 B of every held connection.
 */
const STARTED = Symbol('scopegate.sessionStart');
type WithStart = Client & { [STARTED]?: number };

/** Adds the (empty) start slot when the client first appears, so every client object has one shape. */
export function initStartSlot(client: Client): void {
  (client as WithStart)[STARTED] = undefined;
}

/**
 * Applies policy to live sessions: a new grant (subscriptions no longer allowed are dropped, those that follow
 * a moved actor are re-made in its new namespace, the will is re-checked), a revocation (the session is
 * closed, its will discarded), and token expiry (a session outlives no token).
 */
export class SessionControl {
  /**
   * Sessions by the expiry of their token (ms since the epoch), with the clock deadline that closes them: one
   * deadline per distinct expiry, not a closure and a cancel function per session (~300 B of each held one).
   */
  private readonly expiries = new Map<number, { sessions: Set<Client>; cancel: () => void }>();
  /** How many sessions have started so far; each client carries when (in that count) its session did. */
  private starts = 0;
  /** Shared subscription groups (set by server.ts once Aedes exists): dropped member filters leave them. */
  shared: SharedGroups | null = null;
  /** Equal grants of live sessions are one set of objects (held connections are most of the broker's memory). */
  private readonly grants = new GrantInterner();

  constructor(
    private readonly registry: SessionRegistry,
    private readonly cacheSize: number,
    private readonly metrics: BrokerMetrics,
    private readonly logger: Logger,
    private readonly limits: LimitRuntime,
    private readonly queues: OfflineQueues,
    /** When tokens expire: the system clock, or one a test moves. */
    private readonly clock: BrokerClock = systemClock,
  ) {}

  /** The grant as live sessions keep it: sharing the objects of an equal grant of a live session. */
  keptGrant(grant: SessionGrant): SessionGrant {
    return this.grants.intern(grant);
  }

  /** A session was authorized at CONNECT, with the grant kept when it was decided (`keptGrant`). */
  start(client: Client, grant: SessionGrant): void {
    (client as WithStart)[STARTED] = ++this.starts;
    const limits = this.limits.forSession(grant);
    // Freed by `ended` (the broker calls it when the connection closes, see hooks/connect.ts).
    this.registry.set(client, sessionStateFor(grant, this.cacheSize, limits));
    this.queues.sessionStarted(client.id, client.clean, limits.maxQueued, limits.counters);
    if (grant.expiresAt !== null) this.expireAt(client, grant.expiresAt);
  }

  /** The session ended (disconnect, takeover, close). */
  ended(client: Client): void {
    // A refreshed grant keeps the expiry of the one from CONNECT (see `apply`), so this finds the session.
    const at = stateOf(client)?.grant.expiresAt;
    const due = at == null ? undefined : this.expiries.get(at);
    if (due && due.sessions.delete(client) && due.sessions.size === 0) {
      due.cancel();
      this.expiries.delete(at!);
    }
    this.registry.delete(client);
  }

  /** Closes the session when the clock reaches `at`. */
  private expireAt(client: Client, at: number): void {
    let due = this.expiries.get(at);
    if (!due) {
      // In the map before the clock is asked: a clock already past `at` closes the session right away.
      due = { sessions: new Set(), cancel: () => undefined };
      this.expiries.set(at, due);
      due.sessions.add(client);
      due.cancel = this.clock.at(at, () => this.expire(at));
      return;
    }
    due.sessions.add(client);
  }

  private expire(at: number): void {
    const due = this.expiries.get(at);
    this.expiries.delete(at);
    for (const client of due?.sessions ?? []) this.close(client, 'token_expired');
  }

  /** A mark to pass to `apply`: sessions started after it are newer than a refresh requested now. */
  get startMark(): number {
    return this.starts;
  }

  /**
   * Re-decides a live session with a fresh grant from the sidecar, computed at `revision` (null: the actor may
   * no longer connect), requested at `requestedAt` (a `startMark`). A session that started after the request
   * with a grant newer than the answer (a CONNECT decided after the refresh was) keeps its grant.
   */
  apply(client: Client, fresh: SessionGrant | null, revision: number, requestedAt: number): void {
    const old = stateOf(client);
    if (!old || client.closed) return;
    if (((client as WithStart)[STARTED] ?? 0) > requestedAt && revision < old.grant.revision) return;
    if (!fresh) return this.close(client, 'revoked');
    // Refreshed grants carry no credential expiry; the one from CONNECT still holds.
    // The limits too: a limit changed while connected applies to the next packet (pacing schedules kept).
    const grant = this.grants.intern({ ...fresh, expiresAt: old.grant.expiresAt });
    const limits = this.limits.forSession(grant, old.limits ?? undefined);
    const state = sessionStateFor(grant, this.cacheSize, limits);
    this.queues.sessionStarted(client.id, client.clean, limits.maxQueued, limits.counters);
    this.registry.set(client, state);

    const drop: string[] = [];
    const remake: { topic: string; qos: number }[] = [];
    const held = subscriptionsOf(client);
    const holds = new Set(held.map(([f]) => f));
    for (const [topic, qos] of held) {
      const member = isMemberFilter(topic) ? parseMember(topic) : null;
      if (member ? memberStillAllowed(state, client.id, topic) : subscriptionStillAllowed(state, topic)) continue;
      drop.push(topic);
      if (member) this.shared?.leave(client.id, topic);
      // The actor moved: its own filter, re-decided in its new namespace (a group member joins the group of
      // its new scope).
      const clientFilter = toClient(old.view, member ? member.internal : topic);
      if (clientFilter === null) continue;
      const moved = member ? decideSharedSubscribe(state, client.id, { group: member.group, filter: clientFilter }) : decideSubscribe(state, clientFilter);
      if (!isRefusal(moved) && !holds.has(moved)) remake.push({ topic: moved, qos });
    }
    if (drop.length > 0) {
      this.metrics.subscriptionsDropped.inc(drop.length);
      this.logger.info({ clientId: client.id, actorId: state.grant.actorId, dropped: drop.length, remade: remake.length }, 'policy change: subscriptions re-decided');
      removeStoredSubscriptions(client, drop);
      updateHeld(client, drop, remake.map((r) => r.topic));
      client.unsubscribe({ unsubscriptions: drop } as never, () => {
        if (remake.length > 0 && !client.closed) client.subscribe({ subscriptions: remake } as never, () => undefined);
      });
    }
    const willTopic = willTopicOf(client);
    if (willTopic !== null) {
      const willClient = toClient(old.view, willTopic);
      const decided = willClient === null ? null : decidePublish(state, willClient);
      if (decided === null || isRefusal(decided)) discardWill(client);
      else setWillTopic(client, decided);
    }
  }

  /** Closes a session the broker no longer allows; its will is not published. */
  close(client: Client, reason: 'revoked' | 'token_expired' | 'sidecar_grace_expired' | 'disconnected_by_admin'): void {
    if (client.closed) return;
    const state = stateOf(client);
    this.logger.info({ clientId: client.id, actorId: state?.grant.actorId, scopeId: state?.grant.accessScopeId, reason }, 'closing session');
    this.metrics.sessionsClosed.labels(reason).inc();
    discardWill(client);
    if (reason !== 'sidecar_grace_expired') this.shared?.forget(client.id);
    this.ended(client);
    client.close();
  }
}
