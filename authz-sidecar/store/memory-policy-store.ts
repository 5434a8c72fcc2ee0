import type { StoredRecord } from '../model/records.ts';
import {
  touchedPartitions,
  type AuditEntry,
  type AuditQuery,
  type ChangeEvent,
  type Commit,
  type CommitResult,
  type PolicyStore,
  type Snapshot,
  type Unwatch,
} from './policy-store.ts';

export interface MemoryPolicyStoreOptions {
  /** How many change events to keep for `changesSince`; older ones answer 'gap'. */
  changeLogSize?: number;
  auditLogSize?: number;
}

/**
 * The embedded store for a first run (REDIS_URL unset): same semantics as RedisPolicyStore, nothing durable.
 * Records are stored as JSON strings so that callers can never mutate stored state through a shared object,
 * exactly as with Redis.
 */
export class MemoryPolicyStore implements PolicyStore {
  private seq = 0;
  private readonly records = new Map<string, string>();
  private readonly partitions = new Map<string, number>();
  private readonly changes: ChangeEvent[] = [];
  private readonly auditLog: AuditEntry[] = [];
  private readonly listeners = new Set<(e: ChangeEvent) => void>();
  private readonly changeLogSize: number;
  private readonly auditLogSize: number;
  private closed = false;

  constructor(options: MemoryPolicyStoreOptions = {}) {
    this.changeLogSize = options.changeLogSize ?? 100_000;
    this.auditLogSize = options.auditLogSize ?? 100_000;
  }

  async snapshot(): Promise<Snapshot> {
    return {
      seq: this.seq,
      records: [...this.records.values()].map((json) => JSON.parse(json) as StoredRecord),
      partitions: Object.fromEntries(this.partitions),
    };
  }

  async commit(commit: Commit): Promise<CommitResult> {
    const conflicts = Object.entries(commit.expect)
      .filter(([p, s]) => (this.partitions.get(p) ?? 0) !== s)
      .map(([p]) => p);
    if (conflicts.length > 0) return { ok: false, conflicts };

    const seq = ++this.seq;
    for (const r of commit.puts) this.records.set(r.id, JSON.stringify(r));
    for (const r of commit.deletes) this.records.delete(r.id);
    const partitions = touchedPartitions(commit);
    for (const p of partitions) this.partitions.set(p, seq);

    const event: ChangeEvent = JSON.parse(
      JSON.stringify({ seq, partitions, puts: commit.puts, deletes: commit.deletes }),
    ) as ChangeEvent;
    this.changes.push(event);
    if (this.changes.length > this.changeLogSize) this.changes.splice(0, this.changes.length - this.changeLogSize);
    this.auditLog.push({ ...(JSON.parse(JSON.stringify(commit.audit)) as Commit['audit']), seq });
    if (this.auditLog.length > this.auditLogSize) this.auditLog.splice(0, this.auditLog.length - this.auditLogSize);

    // Deliver asynchronously, like a Redis stream reader would.
    queueMicrotask(() => {
      for (const l of this.listeners) l(event);
    });
    return { ok: true, seq };
  }

  async changesSince(seq: number): Promise<ChangeEvent[] | 'gap'> {
    if (seq >= this.seq) return [];
    const first = this.changes[0];
    if (!first || first.seq > seq + 1) return 'gap';
    return this.changes.filter((c) => c.seq > seq);
  }

  watch(listener: (event: ChangeEvent) => void): Unwatch {
    this.listeners.add(listener);
    // Listeners are called synchronously at commit: the starting point is taken at once.
    return Object.assign(() => void this.listeners.delete(listener), { ready: Promise.resolve() });
  }

  async audit(query: AuditQuery): Promise<AuditEntry[]> {
    const out: AuditEntry[] = [];
    for (let i = this.auditLog.length - 1; i >= 0 && out.length < query.limit; i--) {
      const e = this.auditLog[i]!;
      if (query.before !== undefined && e.seq >= query.before) continue;
      if (query.tenantId !== undefined && !e.tenantIds.includes(query.tenantId)) continue;
      out.push(e);
    }
    return out;
  }

  async ping(): Promise<void> {
    if (this.closed) throw new Error('store closed');
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
  }
}
