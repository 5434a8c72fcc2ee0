import { ScopeGateError } from '../../shared/errors.ts';
import { uniqueKey } from '../model/policy-model.ts';
import type {
  MembershipRecord,
  PermissionOverrideRecord,
  PermissionRecord,
  RoleAssignmentRecord,
  RolePermissionOverrideRecord,
  RolePermissionRecord,
  RoleRecord,
  ScopeRecord,
  UserRecord,
} from '../model/records.ts';
import type { Input } from './inputs.ts';
import { touchGlobal } from './scopes.ts';
import { newId, type Tx } from './tx.ts';

/** Roles, permissions, their links, users, memberships, role assignments and overrides. */

function conflict(message: string, path?: string): ScopeGateError {
  return new ScopeGateError('ALREADY_EXISTS', message, [{ ...(path ? { path } : {}), message }]);
}

function pendingHas(tx: Tx, pred: (r: import('../model/records.ts').StoredRecord) => boolean): boolean {
  for (const r of tx.puts.values()) if (pred(r)) return true;
  return false;
}

function taken(tx: Tx, key: string): boolean {
  const r = tx.model.byUniqueKey(key);
  return r !== undefined && !tx.deletes.has(r.id);
}

/** Is `scope` the same as, or below, `ancestorId`? */
export function isAtOrBelow(tx: Tx, scope: ScopeRecord, ancestorId: string): boolean {
  return tx.model.ancestry(scope.id).some((s) => s.id === ancestorId) || scope.id === ancestorId;
}

export function createRole(tx: Tx, input: Input<'roleCreate'>): RoleRecord {
  const scope = tx.ref('scope', input.scopeId, 'scopeId');
  const lower = input.name.toLowerCase();
  if (taken(tx, uniqueKey('role.name', scope.id, lower)) || pendingHas(tx, (r) => r.kind === 'role' && r.scopeId === scope.id && r.name.toLowerCase() === lower)) {
    throw conflict(`A role named '${input.name}' already exists at this scope.`, 'name');
  }
  return tx.put({
    kind: 'role',
    ...tx.base('role'),
    tenantId: scope.tenantId,
    scopeId: scope.id,
    name: input.name,
    description: input.description ?? null,
  });
}

export function patchRole(tx: Tx, role: RoleRecord, input: Input<'rolePatch'>): RoleRecord {
  if (input.name !== undefined && input.name.toLowerCase() !== role.name.toLowerCase()) {
    if (taken(tx, uniqueKey('role.name', role.scopeId, input.name.toLowerCase()))) {
      throw conflict(`A role named '${input.name}' already exists at this scope.`, 'name');
    }
  }
  return tx.put({
    ...role,
    ...(input.name !== undefined ? { name: input.name } : {}),
    ...(input.description !== undefined ? { description: input.description } : {}),
    updatedAt: tx.now,
  });
}

export function createPermission(tx: Tx, input: Input<'permissionCreate'>): PermissionRecord {
  const scope = tx.ref('scope', input.scopeId, 'scopeId');
  const key = input.key ?? `${input.resourceType}:${input.action}:${input.resourcePattern}`;
  if (taken(tx, uniqueKey('permission.key', scope.id, key)) || pendingHas(tx, (r) => r.kind === 'permission' && r.scopeId === scope.id && r.key === key)) {
    throw conflict(`A permission with key '${key}' already exists at this scope.`, 'key');
  }
  return tx.put({
    kind: 'permission',
    ...tx.base('permission'),
    tenantId: scope.tenantId,
    scopeId: scope.id,
    action: input.action,
    resourceType: input.resourceType,
    resourcePattern: input.resourcePattern,
    key,
    ...topicFieldsOf(input),
  });
}

/** maxQos, retain and maxPayloadBytes: only on permissions that can concern topics. */
function topicFieldsOf(input: Input<'permissionCreate'>): Pick<PermissionRecord, 'maxQos' | 'retain' | 'maxPayloadBytes'> {
  const fields = { maxQos: input.maxQos ?? null, retain: input.retain ?? null, maxPayloadBytes: input.maxPayloadBytes ?? null };
  if (Object.values(fields).every((v) => v === null)) return {};
  if (input.resourceType !== 'topic' && input.resourceType !== '*') {
    throw new ScopeGateError('RULE_VIOLATION', 'maxQos, retain and maxPayloadBytes apply to topic permissions only.', [{ path: 'resourceType', message: "must be 'topic' (or '*') with topic fields" }]);
  }
  return fields;
}

export function linkRolePermission(tx: Tx, input: Input<'rolePermissionCreate'>): RolePermissionRecord {
  const role = tx.ref('role', input.roleId, 'roleId');
  const permission = tx.ref('permission', input.permissionId, 'permissionId');
  if (role.tenantId !== permission.tenantId) {
    throw new ScopeGateError('CROSS_TENANT', 'The role and the permission belong to different tenants.', [{ path: 'permissionId', message: 'other tenant' }]);
  }
  if (taken(tx, uniqueKey('rolePermission', role.id, permission.id)) || pendingHas(tx, (r) => r.kind === 'rolePermission' && r.roleId === role.id && r.permissionId === permission.id)) {
    throw conflict('This permission is already linked to this role.');
  }
  return tx.put({
    kind: 'rolePermission',
    ...tx.base('rolePermission'),
    tenantId: role.tenantId,
    roleId: role.id,
    permissionId: permission.id,
  });
}

/** Users of a tenant for `maxUsers`: those whose default tenant it is, and those with a membership in it. */
export function usersOfTenant(tx: Tx, tenantId: string): Set<string> {
  const users = new Set<string>();
  for (const u of tx.model.referrersOf(tenantId, 'user')) users.add(u.id);
  for (const r of tx.puts.values()) if (r.kind === 'user' && r.defaultTenantId === tenantId) users.add(r.id);
  for (const m of tx.model.all('membership')) {
    if (m.tenantId !== tenantId) continue;
    const s = tx.model.subject(m.subjectId);
    if (s?.kind === 'user') users.add(s.id);
  }
  return users;
}

function assertUserLimit(tx: Tx, tenantId: string, userId: string): void {
  const tenant = tx.ref('tenant', tenantId, 'tenantId');
  if (tenant.maxUsers === null) return;
  const users = usersOfTenant(tx, tenantId);
  if (users.has(userId)) return;
  if (users.size >= tenant.maxUsers) {
    throw new ScopeGateError('LIMIT_EXCEEDED', `Tenant '${tenant.id}' already has its maximum of ${tenant.maxUsers} users.`, [
      { path: 'tenantId', message: 'maxUsers reached', limit: tenant.maxUsers },
    ]);
  }
}

export function createUser(tx: Tx, input: Input<'userCreate'>): UserRecord {
  // The owning tenant (the seed's defaultTenantId): unique keys and the partition are that tenant's, so a
  // create in one tenant neither sees nor blocks the people of another.
  const tenantId = input.defaultTenantId ?? null;
  if (tenantId) tx.ref('tenant', tenantId, 'defaultTenantId');
  else tx.depend('global');
  if (taken(tx, uniqueKey('user.kindeId', tenantId ?? '', input.kindeId)) || pendingHas(tx, (r) => r.kind === 'user' && r.tenantId === tenantId && r.kindeId === input.kindeId)) {
    throw conflict(`A user with kindeId '${input.kindeId}' already exists${tenantId ? ' in this tenant' : ''}.`, 'kindeId');
  }
  const email = input.email.toLowerCase();
  if (taken(tx, uniqueKey('user.email', tenantId ?? '', email)) || pendingHas(tx, (r) => r.kind === 'user' && r.tenantId === tenantId && r.email.toLowerCase() === email)) {
    throw conflict(`A user with email '${input.email}' already exists${tenantId ? ' in this tenant' : ''}.`, 'email');
  }
  const base = tx.base('user');
  if (tenantId) assertUserLimit(tx, tenantId, base.id);
  const user = tx.put({
    kind: 'user',
    ...base,
    tenantId,
    subjectId: `subject_${base.id.slice(5)}`,
    kindeId: input.kindeId,
    email: input.email,
    firstName: input.firstName ?? null,
    lastName: input.lastName ?? null,
    defaultTenantId: tenantId,
  } satisfies UserRecord);
  if (!tenantId) touchGlobal(tx);
  return user;
}

/**
 * Moves a tenant's partition (users live in the global one), so a concurrent limit check on it conflicts
 * and is redone; the tenant record is not rewritten.
 */
function touchTenant(tx: Tx, tenantId: string): void {
  if (tx.get('tenant', tenantId)) tx.touch(tenantId);
}

export function patchUser(tx: Tx, user: UserRecord, input: Input<'userPatch'>): UserRecord {
  if (user.tenantId === null) tx.depend('global');
  if (input.email !== undefined && input.email.toLowerCase() !== user.email.toLowerCase()) {
    if (taken(tx, uniqueKey('user.email', user.tenantId ?? '', input.email.toLowerCase()))) {
      throw conflict(`A user with email '${input.email}' already exists${user.tenantId ? ' in this tenant' : ''}.`, 'email');
    }
    if (user.tenantId === null) touchGlobal(tx);
  }
  if (input.defaultTenantId !== undefined && input.defaultTenantId !== user.defaultTenantId) {
    // A tenant's user stays in its tenant: the same person elsewhere is another tenant's user record.
    if (user.tenantId !== null) {
      throw new ScopeGateError('CROSS_TENANT', `User '${user.id}' belongs to tenant '${user.tenantId}'; create the person as a user of the other tenant instead.`, [
        { path: 'defaultTenantId', message: 'a user belongs to one tenant' },
      ]);
    }
    if (input.defaultTenantId) {
      tx.ref('tenant', input.defaultTenantId, 'defaultTenantId');
      assertUserLimit(tx, input.defaultTenantId, user.id);
      touchTenant(tx, input.defaultTenantId);
    }
  }
  return tx.put({
    ...user,
    ...(input.email !== undefined ? { email: input.email } : {}),
    ...(input.firstName !== undefined ? { firstName: input.firstName } : {}),
    ...(input.lastName !== undefined ? { lastName: input.lastName } : {}),
    ...(input.defaultTenantId !== undefined ? { defaultTenantId: input.defaultTenantId } : {}),
    updatedAt: tx.now,
  });
}

export function createMembership(tx: Tx, input: Input<'membershipCreate'>): MembershipRecord {
  const scope = tx.ref('scope', input.scopeId, 'scopeId');
  const subject = tx.model.subject(input.subjectId);
  if (!subject) {
    throw new ScopeGateError('INVALID_REFERENCE', `subjectId refers to subject '${input.subjectId.slice(0, 80)}', which does not exist.`, [
      { path: 'subjectId', message: 'no such subject' },
    ]);
  }
  tx.get(subject.kind, subject.id); // depend on the subject's partition
  if (subject.tenantId !== null && subject.tenantId !== scope.tenantId) {
    throw new ScopeGateError('CROSS_TENANT', `A${subject.kind === 'actor' ? 'n actor' : ' user'} can only be a member of scopes of its own tenant.`, [{ path: 'scopeId', message: 'other tenant' }]);
  }
  if (taken(tx, uniqueKey('membership', subject.subjectId, scope.id))) {
    throw conflict('This subject is already a member of this scope.');
  }
  if (subject.kind === 'user') {
    assertUserLimit(tx, scope.tenantId, subject.id);
    if (subject.tenantId === null) tx.depend('global');
  }
  return tx.put({
    kind: 'membership',
    ...tx.base('membership'),
    tenantId: scope.tenantId,
    subjectId: subject.subjectId,
    scopeId: scope.id,
  });
}

export function assignRole(tx: Tx, input: Input<'roleAssignmentCreate'>): RoleAssignmentRecord {
  const role = tx.ref('role', input.roleId, 'roleId');
  const membership = tx.ref('membership', input.membershipId, 'membershipId');
  if (role.tenantId !== membership.tenantId) {
    throw new ScopeGateError('CROSS_TENANT', 'The role and the membership belong to different tenants.', [{ path: 'roleId', message: 'other tenant' }]);
  }
  const membershipScope = tx.ref('scope', membership.scopeId, 'membershipId');
  if (!isAtOrBelow(tx, membershipScope, role.scopeId)) {
    throw new ScopeGateError(
      'RULE_VIOLATION',
      `Role '${role.id}' is defined at scope '${role.scopeId}'; it can only be assigned on a membership at or below that scope.`,
      [{ path: 'membershipId', message: 'membership scope is not at or below the role scope' }],
    );
  }
  if (taken(tx, uniqueKey('roleAssignment', role.id, membership.id))) throw conflict('This role is already assigned on this membership.');
  return tx.put({
    kind: 'roleAssignment',
    ...tx.base('roleAssignment'),
    tenantId: role.tenantId,
    roleId: role.id,
    membershipId: membership.id,
  });
}

function assertOverrideScope(tx: Tx, scope: ScopeRecord, permission: PermissionRecord): void {
  if (scope.tenantId !== permission.tenantId) {
    throw new ScopeGateError('CROSS_TENANT', 'The scope and the permission belong to different tenants.', [{ path: 'childScopeId', message: 'other tenant' }]);
  }
  if (!isAtOrBelow(tx, scope, permission.scopeId)) {
    throw new ScopeGateError('RULE_VIOLATION', 'An override must be on the scope that defines the permission or below it.', [
      { path: 'childScopeId', message: 'not at or below the permission scope' },
    ]);
  }
}

/** Upsert: one override per (scope, permission); posting again changes its state. */
export function setPermissionOverride(tx: Tx, input: Input<'permissionOverride'>): PermissionOverrideRecord {
  const scope = tx.ref('scope', input.childScopeId, 'childScopeId');
  const permission = tx.ref('permission', input.permissionId, 'permissionId');
  assertOverrideScope(tx, scope, permission);
  const existing = tx.model.permissionOverrideAt(scope.id, permission.id);
  return tx.put({
    kind: 'permissionOverride',
    ...(existing ?? tx.base('permissionOverride')),
    updatedAt: tx.now,
    tenantId: scope.tenantId,
    childScopeId: scope.id,
    permissionId: permission.id,
    state: input.state,
  });
}

export function setRolePermissionOverride(tx: Tx, input: Input<'rolePermissionOverride'>): RolePermissionOverrideRecord {
  const scope = tx.ref('scope', input.childScopeId, 'childScopeId');
  const role = tx.ref('role', input.roleId, 'roleId');
  const permission = tx.ref('permission', input.permissionId, 'permissionId');
  assertOverrideScope(tx, scope, permission);
  if (role.tenantId !== scope.tenantId) {
    throw new ScopeGateError('CROSS_TENANT', 'The role belongs to another tenant.', [{ path: 'roleId', message: 'other tenant' }]);
  }
  const existing = tx.model.rolePermissionOverrideAt(scope.id, role.id, permission.id);
  return tx.put({
    kind: 'rolePermissionOverride',
    ...(existing ?? tx.base('rolePermissionOverride')),
    updatedAt: tx.now,
    tenantId: scope.tenantId,
    childScopeId: scope.id,
    roleId: role.id,
    permissionId: permission.id,
    state: input.state,
  });
}

export { newId };
