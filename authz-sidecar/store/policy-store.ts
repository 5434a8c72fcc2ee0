import type { StoredRecord, RecordKind } from '../model/records.ts';

/**
 * The one store interface. The store is deliberately dumb: it keeps records, a global sequence number and
 * one "last changed at seq" number per partition (a tenant id, or 'global'). All the rules (references,
 * limits, hierarchy) are checked in memory by the service layer against a replica that is at least as fresh
 * as the partitions it read; the store's only job is to apply a commit atomically *if* none of those
 * partitions changed in between (optimistic concurrency). That single primitive makes batches all-or-nothing,
 * cascades free of dangling references and limit checks safe under concurrent requests.
 */
export interface PolicyStore {
  /** A consistent copy of everything, as of `seq`. */
  snapshot(): Promise<Snapshot>;
  /**
   * Applies the commit atomically if every partition in `expect` is still at the given seq, and records a
   * change event (and the audit entry) under the new seq. Otherwise applies nothing and names the partitions
   * that moved.
   */
  commit(commit: Commit): Promise<CommitResult>;
  /** Change events after `seq`, in order; 'gap' when the store no longer holds them all (reload a snapshot). */
  changesSince(seq: number): Promise<ChangeEvent[] | 'gap'>;
  /**
   * Calls `listener` for every change committed from now on, by any process sharing the store, in seq
   * order. A listener may see an event it already applied (after a catch-up); seq tells.
   */
  watch(listener: (event: ChangeEvent) => void): Unwatch;
  /** Newest first, at most `limit`, only entries with seq < `before` when given. */
  audit(query: AuditQuery): Promise<AuditEntry[]>;
  /** Resolves when the store answers; rejects with STORE_UNAVAILABLE otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Stops a watch. `ready` resolves once the watch has taken its starting point: every commit made after it
 * resolves, through any instance sharing the store, is delivered. (Commits made through the same instance
 * after watch() returned are delivered even before that.)
 */
export type Unwatch = (() => void) & { readonly ready: Promise<void> };

export interface Snapshot {
  seq: number;
  records: StoredRecord[];
  partitions: Record<string, number>;
}

export interface RecordRef {
  kind: RecordKind;
  id: string;
  tenantId: string | null;
}

export interface Commit {
  /** partition → the seq it must still be at (0 when never written). */
  expect: Record<string, number>;
  puts: StoredRecord[];
  deletes: RecordRef[];
  /**
   * Partitions to move to the new seq although no record of theirs is written: a check that spans records
   * (tenant slugs unique across the store, a tenant's user count) makes racing writes conflict this way,
   * without rewriting a record, so nothing that depends on records (a grant, a cached path) sees a change.
   */
  bump?: string[];
  audit: AuditDraft;
}

export type CommitResult = { ok: true; seq: number } | { ok: false; conflicts: string[] };

export interface ChangeEvent {
  seq: number;
  /** Partitions this change touched; each is now at `seq`. */
  partitions: string[];
  puts: StoredRecord[];
  deletes: RecordRef[];
}

export interface AuditDraft {
  /** Who: 'admin' for the root token, the API key id otherwise. */
  principal: string;
  /** What: e.g. 'tenant.create', 'roles.batch_create'. */
  action: string;
  at: string;
  requestId?: string;
  tenantIds: string[];
  before: unknown[];
  after: unknown[];
}

export interface AuditEntry extends AuditDraft {
  seq: number;
}

export interface AuditQuery {
  limit: number;
  before?: number;
  tenantId?: string;
}

/** Partitions a commit touches: those of every put and delete, and those it bumps. */
export function touchedPartitions(commit: Pick<Commit, 'puts' | 'deletes' | 'bump'>): string[] {
  const set = new Set<string>(commit.bump ?? []);
  for (const r of commit.puts) set.add(r.tenantId ?? 'global');
  for (const r of commit.deletes) set.add(r.tenantId ?? 'global');
  return [...set];
}
