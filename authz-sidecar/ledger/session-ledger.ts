/**
 * The live session ledger: which MQTT sessions are connected right now, on which broker, since when, with
 * which subscriptions (in the client's own view), and how many sessions each scope has below it.
 *
 * Brokers report to the sidecar; the sidecar keeps the ledger. With Redis it is shared by every sidecar (one
 * hash of entries, one hash of per-scope counts, one sorted set of broker leases); in memory it is this
 * process's own. A broker holds a lease it renews with a heartbeat: when the lease runs out (the broker died
 * or lost the sidecar for longer than the lease), its entries are swept and their counts given back.
 *
 * A session enters the ledger at CONNECT decision time through `reserve`, which is atomic (one Lua script in
 * Redis, synchronous in memory): the entry is added only if every limited scope on its path stays under its
 * limit, so a `maxSessions` built on it is exact across sidecars and brokers. `release` gives the slot back.
 */

/** One live session, as the ledger keeps it and the API shows it. */
export interface SessionEntry {
  /** Chosen by the broker for each CONNECT (unique); also the handle of `disconnect`. */
  sessionId: string;
  brokerId: string;
  /** The client id the client chose (without the broker's `<actorId>/` prefix). */
  clientId: string;
  actorId: string;
  tenantId: string;
  projectId: string;
  /** The actor's access scope at CONNECT (null: project-level actor). */
  accessScopeId: string | null;
  /** Scope ids this session counts under: the actor's scope first, up to and including the tenant's scope. */
  scopePath: string[];
  /** Epoch ms of the CONNECT decision. */
  connectedAt: number;
  /** 'connecting' from the decision until the broker reports the CONNACK sent; then 'connected'. */
  state: 'connecting' | 'connected';
  /** Current subscription filters in the client's own view. */
  subscriptions: string[];
  remoteAddress?: string | undefined;
}

/** An upper bound on the number of sessions counted under one scope (a scope's subtree). */
export interface ScopeLimit {
  scopeId: string;
  max: number;
}

export type ReserveResult =
  | { ok: true }
  /** Nothing was added: `scopeId` already has `max` sessions (or more). */
  | { ok: false; scopeId: string; max: number; count: number };

export interface SessionFilter {
  tenantId?: string | undefined;
  projectId?: string | undefined;
  /** Sessions counted under this scope (its whole subtree). */
  scopeId?: string | undefined;
  actorId?: string | undefined;
  brokerId?: string | undefined;
}

export interface HeartbeatResult {
  /** False when the broker had no live lease (first heartbeat, or it expired and its entries were swept). */
  known: boolean;
  /** Entries the ledger holds for this broker (the broker resyncs when this disagrees with its own count). */
  sessions: number;
}

/** A request from an admin to close a session, delivered to every sidecar (and by it to its brokers). */
export interface DisconnectRequest {
  sessionId: string;
  brokerId: string;
}

export interface SessionLedger {
  /**
   * Adds `entry` if, for every limit, the scope's current count is below `max`; atomically, across every
   * sidecar sharing the ledger. The session then counts under each scope of `entry.scopePath`. Also keeps
   * the broker's lease alive for `leaseMs` (a CONNECT may come before the broker's first heartbeat).
   * Expired brokers are swept first, so a dead broker's sessions never hold a slot.
   */
  reserve(entry: SessionEntry, limits: readonly ScopeLimit[], leaseMs: number): Promise<ReserveResult>;
  /** Removes a session and gives its slots back. Idempotent; false when it was not there. */
  release(sessionId: string): Promise<boolean>;
  /** The broker sent the CONNACK: 'connecting' → 'connected'. False when the session is unknown. */
  markConnected(sessionId: string): Promise<boolean>;
  /** Replaces a session's subscription list (client view). False when the session is unknown. */
  setSubscriptions(sessionId: string, subscriptions: readonly string[]): Promise<boolean>;
  /** Renews a broker's lease for `leaseMs` and sweeps expired brokers. */
  heartbeat(brokerId: string, leaseMs: number): Promise<HeartbeatResult>;
  /**
   * Makes the ledger's entries of `brokerId` equal to `entries` (no limit check: these sessions are already
   * connected), except that entries reserved at or after `keepReservedSince` are kept even when absent (their
   * CONNECT answer may still be on its way to the broker). Renews the lease.
   */
  sync(brokerId: string, entries: readonly SessionEntry[], keepReservedSince: number, leaseMs: number): Promise<void>;
  /** Live sessions matching the filter, oldest first (expired brokers swept first). */
  list(filter?: SessionFilter): Promise<SessionEntry[]>;
  get(sessionId: string): Promise<SessionEntry | null>;
  /** Sessions counted under each scope (0 for scopes with none). */
  counts(scopeIds: readonly string[]): Promise<Map<string, number>>;
  /** Publishes a disconnect request to every sidecar sharing the ledger (this one included). */
  requestDisconnect(request: DisconnectRequest): Promise<void>;
  /** Hears every disconnect request published through `requestDisconnect`; returns an unsubscribe function. */
  onDisconnect(listener: (request: DisconnectRequest) => void): () => void;
  close(): Promise<void>;
}

/** The filter as a predicate (both implementations list, then filter in memory). */
export function matchesFilter(e: SessionEntry, f: SessionFilter): boolean {
  if (f.tenantId !== undefined && e.tenantId !== f.tenantId) return false;
  if (f.projectId !== undefined && e.projectId !== f.projectId) return false;
  if (f.actorId !== undefined && e.actorId !== f.actorId) return false;
  if (f.brokerId !== undefined && e.brokerId !== f.brokerId) return false;
  if (f.scopeId !== undefined && !e.scopePath.includes(f.scopeId)) return false;
  return true;
}

export function byConnectedAt(a: SessionEntry, b: SessionEntry): number {
  return a.connectedAt - b.connectedAt || (a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0);
}
