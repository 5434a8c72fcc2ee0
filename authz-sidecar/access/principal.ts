import { ScopeGateError } from '../../shared/errors.ts';
import { GLOBAL_PARTITION } from '../model/policy-model.ts';
import type { ApiKeyCapability, RecordKind, RecordOf, StoredRecord } from '../model/records.ts';
import type { Tx } from '../service/tx.ts';

/**
 * What a caller may reach, decided by the same scope tree the engine walks: the root admin token reaches
 * everything, an API key the subtree of the scope it was issued for. Policy, not HTTP: routes, decisions and
 * writes all ask here.
 */

/** Anything records can be read from: the model, or a transaction that also sees its own pending writes. */
export interface RecordSource {
  get<K extends RecordKind>(kind: K, id: string): RecordOf<K> | undefined;
}

/**
 * Who is calling the admin API. The root admin token may do anything; an API key is confined to the
 * subtree of the scope it was issued for, decided by the same scope tree the engine walks.
 */
export type Principal =
  | { kind: 'root'; id: 'admin' }
  | { kind: 'apiKey'; id: string; scopeId: string; tenantId: string; capabilities: readonly ApiKeyCapability[] };

/**
 * Fields that belong to the operator, not the tenant: the plan and the limits it pays for. An API key
 * changes them only with the capability named here, which only the root token can put on a key.
 */
export const OPERATOR_FIELDS: { [K in RecordKind]?: { fields: readonly (keyof RecordOf<K>)[]; capability: ApiKeyCapability } } = {
  // The tenant's MQTT `limits` bound its whole tree (a child only narrows them): they are the plan's too.
  tenant: { fields: ['planKey', 'maxUsers', 'maxWorkspaces', 'limits'], capability: 'tenant.plan' },
};

/** The scope a record lives at, for deciding whether an API key may see or change it; null for global records. */
export function scopeOfRecord(model: RecordSource, r: StoredRecord): string | null {
  switch (r.kind) {
    case 'scope':
      return r.id;
    case 'tenant':
    case 'workspace':
    case 'project':
    case 'environment':
    case 'role':
    case 'permission':
    case 'membership':
    case 'apiKey':
      return r.scopeId;
    case 'rolePermission': {
      const role = model.get('role', r.roleId);
      return role?.scopeId ?? null;
    }
    case 'roleAssignment': {
      const m = model.get('membership', r.membershipId);
      return m?.scopeId ?? null;
    }
    case 'permissionOverride':
    case 'rolePermissionOverride':
      return r.childScopeId;
    case 'actor':
      return r.accessScopeId ?? model.get('project', r.projectId)?.scopeId ?? null;
    case 'app':
      return model.get('project', r.projectId)?.scopeId ?? null;
    case 'appGrant': {
      const app = model.get('app', r.appId);
      return app ? (model.get('project', app.projectId)?.scopeId ?? null) : null;
    }
    case 'actorSecret':
    case 'delegation': {
      const actor = model.get('actor', r.actorId);
      return actor ? scopeOfRecord(model, actor) : null;
    }
    case 'user':
      // A user lives at its tenant's scope: only the root token and tenant-wide keys see its personal data.
      // Root's global identities (no tenant) are visible to the root token only.
      return r.tenantId ? (model.get('tenant', r.tenantId)?.scopeId ?? null) : null;
    default:
      return null;
  }
}

/** Is `scopeId` the principal's scope or inside its subtree? */
export function principalCovers(src: RecordSource, principal: Principal, scopeId: string | null): boolean {
  if (principal.kind === 'root') return true;
  let current = scopeId === null ? undefined : src.get('scope', scopeId);
  for (let depth = 0; current && depth < 1_000; depth++) {
    if (current.id === principal.scopeId) return true;
    current = current.parentId === null ? undefined : src.get('scope', current.parentId);
  }
  return false;
}

/** Does an API key's subtree lie inside `scopeId` (its root at or below it)? The root token's does. */
export function principalInside(src: RecordSource, principal: Principal, scopeId: string): boolean {
  if (principal.kind === 'root') return true;
  let current = src.get('scope', principal.scopeId);
  for (let depth = 0; current && depth < 1_000; depth++) {
    if (current.id === scopeId) return true;
    current = current.parentId === null ? undefined : src.get('scope', current.parentId);
  }
  return false;
}

export function canSee(model: RecordSource, principal: Principal, r: StoredRecord): boolean {
  if (principal.kind === 'root') return true;
  // Scope types and their hierarchy are shared vocabulary: readable by every key, writable by root only.
  if (r.kind === 'scopeType' || r.kind === 'scopeTypeEdge') return true;
  return principalCovers(model, principal, scopeOfRecord(model, r));
}

export function assertCovers(model: RecordSource, principal: Principal, scopeId: string | null): void {
  if (!principalCovers(model, principal, scopeId)) {
    throw new ScopeGateError('FORBIDDEN', 'This API key is limited to another part of the scope tree.');
  }
}

/**
 * Refuses a write that would put or delete anything outside an API key's subtree. Records a write only
 * touches to serialize with others (unchanged content) are not the caller's doing and are skipped.
 */
export function writeGuard(principal: Principal) {
  return (tx: Tx): void => {
    if (principal.kind === 'root') return;
    // Nothing of another tenant may be read either: a key cannot link to, or probe, another tenant's records.
    for (const partition of tx.expect) {
      if (partition !== GLOBAL_PARTITION && partition !== principal.tenantId) {
        throw new ScopeGateError('FORBIDDEN', 'This API key may not refer to another tenant.', [{ message: 'outside key tenant' }]);
      }
    }
    for (const r of tx.puts.values()) {
      const existing = tx.model.getAny(r.id);
      if (existing && JSON.stringify(existing) === JSON.stringify(r)) continue;
      assertOperatorFields(principal, existing, r);
      if (r.kind === 'membership') assertSubjectLinkable(tx, principal, r.subjectId);
      // A moved scope leaves its old parent: that place must be the key's too. The walk below starts at the
      // scope itself, so it would pass a key's own root carried out of its subtree.
      if (r.kind === 'scope' && existing?.kind === 'scope' && existing.parentId !== r.parentId && !principalCovers(tx.model, principal, existing.parentId)) {
        throw new ScopeGateError('FORBIDDEN', "This API key may not move its own root scope (or anything from outside its subtree).", [{ path: 'parentScopeId', message: 'outside key scope' }]);
      }
      if (!principalCovers(tx, principal, scopeOfRecord(tx, r))) {
        throw new ScopeGateError('FORBIDDEN', 'This API key may not write outside its scope.', [{ message: 'outside key scope', kind: r.kind }]);
      }
    }
    for (const ref of tx.deletes.values()) {
      const r = tx.model.getAny(ref.id);
      if (r && !principalCovers(tx.model, principal, scopeOfRecord(tx.model, r))) {
        throw new ScopeGateError('FORBIDDEN', 'This API key may not delete outside its scope.', [{ message: 'outside key scope', kind: r.kind }]);
      }
    }
  };
}

/**
 * Refuses a key's change to operator-owned fields it has no capability for (a tenant lifting its own plan
 * limits), and a key that would hand out capabilities: only the root token grants them.
 */
function assertOperatorFields(principal: Exclude<Principal, { kind: 'root' }>, existing: StoredRecord | undefined, next: StoredRecord): void {
  if (next.kind === 'apiKey' && (next.capabilities ?? []).length > 0 && (existing?.kind !== 'apiKey' || JSON.stringify(existing.capabilities ?? []) !== JSON.stringify(next.capabilities))) {
    throw new ScopeGateError('FORBIDDEN', 'Only the root token may give an API key capabilities.', [{ path: 'capabilities', message: 'root only' }]);
  }
  const owned = OPERATOR_FIELDS[next.kind] as { fields: readonly string[]; capability: ApiKeyCapability } | undefined;
  if (!owned || principal.capabilities.includes(owned.capability)) return;
  const before = (existing ?? {}) as Record<string, unknown>;
  const after = next as unknown as Record<string, unknown>;
  const changed = owned.fields.filter((f) => (existing ? JSON.stringify(before[f]) !== JSON.stringify(after[f]) : after[f] !== null && after[f] !== undefined));
  if (changed.length > 0) {
    throw new ScopeGateError('FORBIDDEN', `Only the root token, or an API key with the '${owned.capability}' capability, may change ${changed.join(', ')}.`, changed.map((f) => ({ path: f, message: `needs ${owned.capability}` })));
  }
}

/** A key links only subjects of its own tenant: never another tenant's, nor a global identity of the root's. */
function assertSubjectLinkable(tx: Tx, principal: Exclude<Principal, { kind: 'root' }>, subjectId: string): void {
  const subject = tx.model.subject(subjectId);
  if (subject && subject.tenantId !== principal.tenantId) {
    throw new ScopeGateError('FORBIDDEN', 'This API key may only link subjects of its own tenant.', [{ path: 'subjectId', message: 'outside key tenant' }]);
  }
}
