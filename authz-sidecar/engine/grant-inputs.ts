import type { PolicyModel } from '../model/policy-model.ts';
import type { StoredRecord } from '../model/records.ts';
import type { ChangeEvent } from '../store/policy-store.ts';

/**
 * What a session grant depends on, named as *grant inputs*: short keys that a grant lists (`dependsOn`) and
 * that a change names when it writes them. The broker indexes its sessions by the inputs of their grants, so a
 * change re-decides exactly the sessions whose grant read something it wrote — no scan, no tenant-wide refresh.
 *
 * A grant depends on a set of inputs; any subject whose memberships it reads is one (`subject:<subjectId>`), so
 * a grant computed for two subjects (delegation) lists both.
 */
export const grantInput = {
  /** The actor record and its app grants. */
  actor: (actorId: string) => `actor:${actorId}`,
  /** The memberships (and their role assignments) of a subject. */
  subject: (subjectId: string) => `subject:${subjectId}`,
  /** A scope record: its slug, parent and type (and that it exists). */
  scope: (scopeId: string) => `scope:${scopeId}`,
  /** The roles, permissions, role–permission links and overrides defined at a scope. */
  rules: (scopeId: string) => `rules:${scopeId}`,
  /** A scope type's permission mode (where the decision path stops). */
  scopeType: (typeId: string) => `scopeType:${typeId}`,
  app: (appId: string) => `app:${appId}`,
  project: (projectId: string) => `project:${projectId}`,
  /** The `limits` a scope sets (on the tenant or project that owns it, or on an access scope itself). */
  limits: (scopeId: string) => `limits:${scopeId}`,
};

/** Looks a record up in the model as it is now, or as it was before the change (deleted or replaced records). */
export type RecordLookup = (id: string) => StoredRecord | undefined;

/**
 * The grant inputs a change writes. `before` holds the records the change replaced or deleted, as they were;
 * the model is the one after the change. Writes that change no grant input (a new scope, actor, role or
 * permission nobody uses yet, a user, a tenant's billing fields, a token, a key) name nothing.
 */
export function inputsOfChange(model: PolicyModel, event: Pick<ChangeEvent, 'puts' | 'deletes'>, before: ReadonlyMap<string, StoredRecord>): string[] {
  const lookup: RecordLookup = (id) => model.getAny(id) ?? before.get(id);
  const out = new Set<string>();
  for (const r of event.puts) inputsOfRecord(r, before.get(r.id), lookup, model, out);
  for (const ref of event.deletes) {
    const old = before.get(ref.id);
    if (old) inputsOfRecord(old, old, lookup, model, out);
  }
  return [...out];
}

/**
 * Actors a change disabled: the broker closes their sessions as soon as it reads the change, without
 * re-fetching a grant it already knows is gone (a revocation is then not queued behind other refreshes).
 * Their `actor:` input is named too, so a broker that ignores this list still re-decides them.
 */
export function actorsDisabledBy(event: Pick<ChangeEvent, 'puts'>): string[] {
  const out: string[] = [];
  for (const r of event.puts) if (r.kind === 'actor' && r.disabled) out.push(r.id);
  return out;
}

/**
 * Inputs of one written record. `old` is the version it replaced (or, for a delete, the record itself); a
 * record created afresh that nothing can refer to yet (a role, a permission) names nothing.
 */
function inputsOfRecord(r: StoredRecord, old: StoredRecord | undefined, lookup: RecordLookup, model: PolicyModel, out: Set<string>): void {
  switch (r.kind) {
    case 'actor':
      out.add(grantInput.actor(r.id));
      return;
    case 'appGrant':
    case 'delegation':
      // A delegation grant created, changed or revoked re-decides the agent's (delegated) sessions.
      out.add(grantInput.actor(r.actorId));
      return;
    case 'app':
      out.add(grantInput.app(r.id));
      return;
    case 'project':
      out.add(grantInput.project(r.id));
      if (limitsChanged(old, r)) out.add(grantInput.limits(r.scopeId));
      return;
    case 'tenant':
      // Only its limits are a grant input (billing fields, names, maxUsers are not).
      if (limitsChanged(old, r)) out.add(grantInput.limits(r.scopeId));
      return;
    case 'scope':
      // A new scope is in no grant's path yet; a moved, re-slugged, retyped or deleted one is in its subtree's.
      // Its name and external id are no grant input.
      if (old?.kind === 'scope' && (old === r || old.slug !== r.slug || old.parentId !== r.parentId || old.typeId !== r.typeId)) out.add(grantInput.scope(r.id));
      if (limitsChanged(old, r)) out.add(grantInput.limits(r.id));
      return;
    case 'scopeType':
      if (old) out.add(grantInput.scopeType(r.id));
      return;
    case 'membership':
    case 'user':
      out.add(grantInput.subject(r.subjectId));
      return;
    case 'roleAssignment': {
      const membership = lookup(r.membershipId);
      if (membership?.kind === 'membership') out.add(grantInput.subject(membership.subjectId));
      else addRoleScope(r.roleId, lookup, out);
      return;
    }
    case 'role':
      // Name and description are no grant input; a role in use goes with its assignments and links.
      if (old?.kind === 'role' && old.scopeId !== r.scopeId) out.add(grantInput.rules(old.scopeId)).add(grantInput.rules(r.scopeId));
      else if (old && old === r) out.add(grantInput.rules(r.scopeId));
      return;
    case 'permission':
      if (old) out.add(grantInput.rules(r.scopeId));
      if (old?.kind === 'permission' && old.scopeId !== r.scopeId) out.add(grantInput.rules(old.scopeId));
      return;
    case 'rolePermission': {
      const scope = linkScope(r.roleId, r.permissionId, lookup, model);
      for (const s of scope) out.add(grantInput.rules(s));
      return;
    }
    case 'permissionOverride':
    case 'rolePermissionOverride':
      out.add(grantInput.rules(r.childScopeId));
      return;
    // Workspaces and environments hold no grant input (their scopes do); type edges only check
    // writes; keys, secrets and signing keys decide credentials at CONNECT, not a session's grant.
    default:
      return;
  }
}

/** A record's `limits` written: created with some, changed, removed, or the record deleted while it had some. */
function limitsChanged(old: StoredRecord | undefined, r: StoredRecord & { limits?: unknown }): boolean {
  const before = old && 'limits' in old ? (old.limits ?? null) : null;
  const after = old === r ? null : (r.limits ?? null);
  return JSON.stringify(before) !== JSON.stringify(after);
}

function addRoleScope(roleId: string, lookup: RecordLookup, out: Set<string>): void {
  const role = lookup(roleId);
  if (role?.kind === 'role') out.add(grantInput.rules(role.scopeId));
}

/**
 * A role–permission link matters only where both are visible, i.e. on paths through the deeper of the two
 * scopes: that scope alone is named. Unrelated scopes (no path holds both) name nothing; an unknown side
 * names the scopes that are known.
 */
function linkScope(roleId: string, permissionId: string, lookup: RecordLookup, model: PolicyModel): string[] {
  const role = lookup(roleId);
  const permission = lookup(permissionId);
  const roleScope = role?.kind === 'role' ? role.scopeId : null;
  const permissionScope = permission?.kind === 'permission' ? permission.scopeId : null;
  if (roleScope === null || permissionScope === null) return [roleScope, permissionScope].filter((s): s is string => s !== null);
  if (roleScope === permissionScope) return [roleScope];
  if (model.ancestry(permissionScope).some((s) => s.id === roleScope)) return [permissionScope];
  if (model.ancestry(roleScope).some((s) => s.id === permissionScope)) return [roleScope];
  return [];
}
