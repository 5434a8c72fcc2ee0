import type { ChangeEvent, Snapshot } from '../store/policy-store.ts';
import {
  GLOBAL_PARTITION,
  type MembershipRecord,
  type PermissionOverrideRecord,
  type RecordKind,
  type RecordOf,
  type RolePermissionOverrideRecord,
  type ScopeRecord,
  type StoredRecord,
} from './records.ts';
import { referencesOf } from './references.ts';

/** At most this many policy-derived values are kept between changes (`memoPolicy`). */
const POLICY_MEMO_MAX = 10_000;
const NO_RECORDS: readonly StoredRecord[] = [];

/**
 * The in-memory, indexed copy of the store that every decision is computed from. It is only ever changed by
 * applying a snapshot or change events from the store, so every sidecar replica converges on the same state.
 * Indexes are maintained incrementally: applying one change costs O(records in the change).
 */
export class PolicyModel {
  /** The store seq this model reflects. */
  seq = 0;
  private readonly partitionSeqs = new Map<string, number>();
  private readonly records = new Map<string, StoredRecord>();
  private readonly byKind = new Map<RecordKind, Map<string, StoredRecord>>();
  /**
   * target id (or subjectId) → referring kind → the referring records. Split by kind because a role may be
   * referred to by 100,000 role assignments while evaluate only asks for its handful of role-permission
   * links; records held directly because every lookup in a map of a million entries is a likely cache miss.
   */
  private readonly referrers = new Map<string, Map<RecordKind, Map<string, StoredRecord>>>();
  /** subjectId → user or actor record. */
  private readonly subjects = new Map<string, RecordOf<'user'> | RecordOf<'actor'>>();
  /** Derived values of the scope tree (e.g. evaluate's resolved paths), dropped when a scope or type changes. */
  private readonly treeMemo = new Map<string, unknown>();
  /**
   * Derived values of the whole policy (e.g. the topic rules a set of roles yields at a scope), dropped by
   * every change. Sessions of one scope usually hold the same roles, so a refresh or a burst of CONNECTs
   * computes their rules once instead of once per actor. Bounded: cleared when it reaches
   * POLICY_MEMO_MAX entries (a burst over many distinct role sets recomputes, it never grows without end).
   */
  private readonly policyMemo = new Map<string, unknown>();
  /** scopeId → overrides defined at that scope, keyed for the engine's lookups. */
  private readonly permissionOverrides = new Map<string, Map<string, PermissionOverrideRecord>>();
  private readonly rolePermissionOverrides = new Map<string, Map<string, RolePermissionOverrideRecord>>();
  /** Unique keys (e.g. slug among siblings) → record id. */
  private readonly uniqueKeys = new Map<string, string>();

  load(snapshot: Snapshot): void {
    this.records.clear();
    this.byKind.clear();
    this.referrers.clear();
    this.subjects.clear();
    this.permissionOverrides.clear();
    this.rolePermissionOverrides.clear();
    this.uniqueKeys.clear();
    this.partitionSeqs.clear();
    this.treeMemo.clear();
    this.policyMemo.clear();
    for (const r of snapshot.records) this.insert(r);
    for (const [p, s] of Object.entries(snapshot.partitions)) this.partitionSeqs.set(p, s);
    this.seq = snapshot.seq;
  }

  /**
   * Applies one change event; events at or below the current seq are ignored (already applied). `displaced`,
   * when given, receives the records the event replaced or deleted, as they were (what a change affected
   * can depend on what a record was, e.g. the role of a deleted role assignment).
   */
  apply(event: ChangeEvent, displaced?: Map<string, StoredRecord>): boolean {
    if (event.seq <= this.seq) return false;
    if (displaced) {
      for (const ref of event.deletes) this.keep(ref.id, displaced);
      for (const r of event.puts) this.keep(r.id, displaced);
    }
    for (const ref of event.deletes) this.remove(ref.id);
    for (const r of event.puts) {
      this.remove(r.id);
      this.insert(r);
    }
    for (const p of event.partitions) this.partitionSeqs.set(p, event.seq);
    this.seq = event.seq;
    this.policyMemo.clear();
    return true;
  }

  private keep(id: string, displaced: Map<string, StoredRecord>): void {
    const r = this.records.get(id);
    if (r && !displaced.has(id)) displaced.set(id, r);
  }

  partitionSeq(partition: string): number {
    return this.partitionSeqs.get(partition) ?? 0;
  }

  get<K extends RecordKind>(kind: K, id: string): RecordOf<K> | undefined {
    const r = this.records.get(id);
    return r && r.kind === kind ? (r as RecordOf<K>) : undefined;
  }

  getAny(id: string): StoredRecord | undefined {
    return this.records.get(id);
  }

  all<K extends RecordKind>(kind: K): IterableIterator<RecordOf<K>> {
    const map = this.byKind.get(kind) ?? new Map<string, StoredRecord>();
    return map.values() as IterableIterator<RecordOf<K>>;
  }

  count(kind: RecordKind): number {
    return this.byKind.get(kind)?.size ?? 0;
  }

  /** Records of `kind` that refer to `targetId` (in any reference field, or via subjectId). */
  referrersOf<K extends RecordKind>(targetId: string, kind?: K): RecordOf<K>[] {
    if (kind !== undefined) return [...this.eachReferrer(targetId, kind)];
    const byKind = this.referrers.get(targetId);
    if (!byKind) return [];
    const out: RecordOf<K>[] = [];
    for (const records of byKind.values()) for (const r of records.values()) out.push(r as RecordOf<K>);
    return out;
  }

  /**
   * The same records as `referrersOf(targetId, kind)`, live and without a copy: for hot loops that only read
   * (a session grant walks a subject's memberships and their role assignments for every refreshed session).
   * Do not change the model while iterating.
   */
  eachReferrer<K extends RecordKind>(targetId: string, kind: K): Iterable<RecordOf<K>> {
    return (this.referrers.get(targetId)?.get(kind)?.values() ?? NO_RECORDS) as Iterable<RecordOf<K>>;
  }

  subject(subjectId: string): RecordOf<'user'> | RecordOf<'actor'> | undefined {
    return this.subjects.get(subjectId);
  }

  /** A value derived from the scope tree only, computed once until a scope or scope type changes. */
  memoTree<T>(key: string, compute: () => T): T {
    let value = this.treeMemo.get(key) as T | undefined;
    if (value === undefined) {
      value = compute();
      this.treeMemo.set(key, value);
    }
    return value;
  }

  /**
   * A value derived from any records, computed once until the next change. The value is shared by every
   * caller until then: treat it as read-only.
   */
  memoPolicy<T>(key: string, compute: () => T): T {
    let value = this.policyMemo.get(key) as T | undefined;
    if (value === undefined) {
      value = compute();
      if (this.policyMemo.size >= POLICY_MEMO_MAX) this.policyMemo.clear();
      this.policyMemo.set(key, value);
    }
    return value;
  }

  membershipsOf(subjectId: string): MembershipRecord[] {
    return this.referrersOf(subjectId, 'membership');
  }

  childScopes(scopeId: string): ScopeRecord[] {
    return this.referrersOf(scopeId, 'scope').filter((s) => s.parentId === scopeId);
  }

  permissionOverrideAt(scopeId: string, permissionId: string): PermissionOverrideRecord | undefined {
    return this.permissionOverrides.get(scopeId)?.get(permissionId);
  }

  rolePermissionOverrideAt(scopeId: string, roleId: string, permissionId: string): RolePermissionOverrideRecord | undefined {
    return this.rolePermissionOverrides.get(scopeId)?.get(`${roleId}\u0000${permissionId}`);
  }

  /** Looks up a unique key (see uniqueKeyOf). */
  byUniqueKey(key: string): StoredRecord | undefined {
    const id = this.uniqueKeys.get(key);
    return id === undefined ? undefined : this.records.get(id);
  }

  /** The scope, its parent, … up to the root (the tenant scope). Guards against cycles. */
  ancestry(scopeId: string): ScopeRecord[] {
    const out: ScopeRecord[] = [];
    let current = this.get('scope', scopeId);
    while (current && out.length < 1_000) {
      out.push(current);
      current = current.parentId === null ? undefined : this.get('scope', current.parentId);
    }
    return out;
  }

  private insert(r: StoredRecord): void {
    this.records.set(r.id, r);
    let kindMap = this.byKind.get(r.kind);
    if (!kindMap) this.byKind.set(r.kind, (kindMap = new Map()));
    kindMap.set(r.id, r);
    for (const { target } of referencesOf(r)) {
      let byKind = this.referrers.get(target);
      if (!byKind) this.referrers.set(target, (byKind = new Map()));
      let records = byKind.get(r.kind);
      if (!records) byKind.set(r.kind, (records = new Map()));
      records.set(r.id, r);
    }
    if (r.kind === 'user' || r.kind === 'actor') this.subjects.set(r.subjectId, r);
    if (r.kind === 'scope' || r.kind === 'scopeType') this.treeMemo.clear();
    if (r.kind === 'permissionOverride') {
      mapOf(this.permissionOverrides, r.childScopeId).set(r.permissionId, r);
    }
    if (r.kind === 'rolePermissionOverride') {
      mapOf(this.rolePermissionOverrides, r.childScopeId).set(`${r.roleId}\u0000${r.permissionId}`, r);
    }
    for (const key of uniqueKeysOf(r)) this.uniqueKeys.set(key, r.id);
  }

  private remove(id: string): void {
    const r = this.records.get(id);
    if (!r) return;
    this.records.delete(id);
    this.byKind.get(r.kind)?.delete(id);
    for (const { target } of referencesOf(r)) {
      const byKind = this.referrers.get(target);
      const records = byKind?.get(r.kind);
      records?.delete(id);
      if (records && records.size === 0) byKind!.delete(r.kind);
      if (byKind && byKind.size === 0) this.referrers.delete(target);
    }
    if (r.kind === 'user' || r.kind === 'actor') this.subjects.delete(r.subjectId);
    if (r.kind === 'scope' || r.kind === 'scopeType') this.treeMemo.clear();
    if (r.kind === 'permissionOverride') this.permissionOverrides.get(r.childScopeId)?.delete(r.permissionId);
    if (r.kind === 'rolePermissionOverride') {
      this.rolePermissionOverrides.get(r.childScopeId)?.delete(`${r.roleId}\u0000${r.permissionId}`);
    }
    for (const key of uniqueKeysOf(r)) if (this.uniqueKeys.get(key) === id) this.uniqueKeys.delete(key);
  }
}

function mapOf<V>(outer: Map<string, Map<string, V>>, key: string): Map<string, V> {
  let inner = outer.get(key);
  if (!inner) outer.set(key, (inner = new Map()));
  return inner;
}

/**
 * Keys that must be unique across the model, so creates can be refused with 409 and lookups stay O(1).
 * Separated by NUL, which no validated slug or id contains.
 */
export function uniqueKeysOf(r: StoredRecord): string[] {
  const k = (...parts: string[]) => parts.join('\u0000');
  switch (r.kind) {
    case 'tenant':
      return [k('tenant.slug', r.slug)];
    case 'scope':
      return r.parentId === null ? [] : [k('scope.slug', r.parentId, r.slug)];
    case 'user':
      // Unique per owning tenant (or among root's global identities): another tenant's people are not a conflict.
      return [k('user.kindeId', r.tenantId ?? '', r.kindeId), k('user.email', r.tenantId ?? '', r.email.toLowerCase())];
    case 'app':
      return [k('app.slug', r.projectId, r.slug)];
    case 'appGrant':
      return [k('appGrant', r.appId, r.actorId)];
    case 'membership':
      return [k('membership', r.subjectId, r.scopeId)];
    case 'roleAssignment':
      return [k('roleAssignment', r.roleId, r.membershipId)];
    case 'rolePermission':
      return [k('rolePermission', r.roleId, r.permissionId)];
    case 'permission':
      return [k('permission.key', r.scopeId, r.key)];
    case 'role':
      return [k('role.name', r.scopeId, r.name.toLowerCase())];
    case 'permissionOverride':
      return [k('po', r.childScopeId, r.permissionId)];
    case 'rolePermissionOverride':
      return [k('rpo', r.childScopeId, r.roleId, r.permissionId)];
    case 'scopeTypeEdge':
      return [k('sth', r.parentTypeId, r.childTypeId)];
    case 'apiKey':
      return [k('apiKey.hash', r.hash)];
    default:
      return [];
  }
}

export const uniqueKey = (...parts: string[]) => parts.join('\u0000');
export { GLOBAL_PARTITION };
