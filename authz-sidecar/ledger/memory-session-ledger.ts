import { EventEmitter } from 'node:events';
import {
  byConnectedAt,
  matchesFilter,
  type DisconnectRequest,
  type HeartbeatResult,
  type ReserveResult,
  type ScopeLimit,
  type SessionEntry,
  type SessionFilter,
  type SessionLedger,
} from './session-ledger.ts';

/**
 * The ledger of one sidecar without Redis. Every operation runs to completion synchronously (the promises
 * only wrap the result), so a reservation's check and add are atomic against every other.
 */
export class MemorySessionLedger implements SessionLedger {
  private readonly sessions = new Map<string, SessionEntry>();
  private readonly scopeCounts = new Map<string, number>();
  /** Sessions per broker: a broker's every report asks for its count (no scan of every session). */
  private readonly brokerCounts = new Map<string, number>();
  private readonly leases = new Map<string, number>();
  private readonly events = new EventEmitter();

  constructor(private readonly now: () => number = Date.now) {}

  async reserve(entry: SessionEntry, limits: readonly ScopeLimit[], leaseMs: number): Promise<ReserveResult> {
    const now = this.now();
    this.sweep(now);
    for (const { scopeId, max } of limits) {
      const count = this.scopeCounts.get(scopeId) ?? 0;
      if (count >= max) return { ok: false, scopeId, max, count };
    }
    if (!this.leases.has(entry.brokerId)) this.leases.set(entry.brokerId, now + leaseMs);
    this.put(entry);
    return { ok: true };
  }

  async release(sessionId: string): Promise<boolean> {
    return this.remove(sessionId);
  }

  async markConnected(sessionId: string): Promise<boolean> {
    const e = this.sessions.get(sessionId);
    if (!e) return false;
    this.sessions.set(sessionId, { ...e, state: 'connected' });
    return true;
  }

  async setSubscriptions(sessionId: string, subscriptions: readonly string[]): Promise<boolean> {
    const e = this.sessions.get(sessionId);
    if (!e) return false;
    this.sessions.set(sessionId, { ...e, subscriptions: [...subscriptions] });
    return true;
  }

  async heartbeat(brokerId: string, leaseMs: number): Promise<HeartbeatResult> {
    const now = this.now();
    this.sweep(now);
    const known = this.leases.has(brokerId);
    this.leases.set(brokerId, now + leaseMs);
    return { known, sessions: this.brokerCounts.get(brokerId) ?? 0 };
  }

  async sync(brokerId: string, entries: readonly SessionEntry[], keepReservedSince: number, leaseMs: number): Promise<void> {
    const now = this.now();
    this.sweep(now);
    this.leases.set(brokerId, now + leaseMs);
    const wanted = new Set(entries.map((e) => e.sessionId));
    for (const e of [...this.sessions.values()]) {
      if (e.brokerId === brokerId && !wanted.has(e.sessionId) && e.connectedAt < keepReservedSince) this.remove(e.sessionId);
    }
    for (const e of entries) {
      this.remove(e.sessionId);
      this.put({ ...e, brokerId });
    }
  }

  async list(filter: SessionFilter = {}): Promise<SessionEntry[]> {
    this.sweep(this.now());
    return [...this.sessions.values()].filter((e) => matchesFilter(e, filter)).sort(byConnectedAt).map(copy);
  }

  async get(sessionId: string): Promise<SessionEntry | null> {
    this.sweep(this.now());
    const e = this.sessions.get(sessionId);
    return e ? copy(e) : null;
  }

  async counts(scopeIds: readonly string[]): Promise<Map<string, number>> {
    this.sweep(this.now());
    return new Map(scopeIds.map((id) => [id, this.scopeCounts.get(id) ?? 0]));
  }

  async requestDisconnect(request: DisconnectRequest): Promise<void> {
    this.events.emit('disconnect', { ...request });
  }

  onDisconnect(listener: (request: DisconnectRequest) => void): () => void {
    this.events.on('disconnect', listener);
    return () => this.events.off('disconnect', listener);
  }

  async close(): Promise<void> {
    this.events.removeAllListeners();
  }

  private put(entry: SessionEntry): void {
    // A session put again (the same id) replaces itself: its counts must not be taken twice.
    this.remove(entry.sessionId);
    this.sessions.set(entry.sessionId, copy(entry));
    for (const s of entry.scopePath) this.scopeCounts.set(s, (this.scopeCounts.get(s) ?? 0) + 1);
    this.brokerCounts.set(entry.brokerId, (this.brokerCounts.get(entry.brokerId) ?? 0) + 1);
  }

  private remove(sessionId: string): boolean {
    const e = this.sessions.get(sessionId);
    if (!e) return false;
    this.sessions.delete(sessionId);
    const left = (this.brokerCounts.get(e.brokerId) ?? 0) - 1;
    if (left > 0) this.brokerCounts.set(e.brokerId, left);
    else this.brokerCounts.delete(e.brokerId);
    for (const s of e.scopePath) {
      const n = (this.scopeCounts.get(s) ?? 0) - 1;
      if (n > 0) this.scopeCounts.set(s, n);
      else this.scopeCounts.delete(s);
    }
    return true;
  }

  /** Removes the sessions of every broker whose lease ran out. */
  private sweep(now: number): void {
    const dead = new Set<string>();
    for (const [brokerId, until] of this.leases) if (until < now) dead.add(brokerId);
    if (dead.size === 0) return;
    for (const b of dead) this.leases.delete(b);
    for (const e of [...this.sessions.values()]) if (dead.has(e.brokerId)) this.remove(e.sessionId);
  }
}

function copy(e: SessionEntry): SessionEntry {
  return { ...e, scopePath: [...e.scopePath], subscriptions: [...e.subscriptions] };
}
