import { ScopeGateError } from '../../shared/errors.ts';
import { uniqueKey } from '../model/policy-model.ts';
import type {
  EnvironmentRecord,
  ProjectRecord,
  ScopeRecord,
  ScopeTypeEdgeRecord,
  ScopeTypeRecord,
  TenantRecord,
  WorkspaceRecord,
} from '../model/records.ts';
import type { Input } from './inputs.ts';
import { ENTITY_TYPES, edgeId } from './builtins.ts';
import { newId, type Tx } from './tx.ts';

/** Tenants, workspaces, projects, environments, scopes and scope types: the scope tree. */

/** A slug from a display name ("API Service" → "api-service"); a random one when nothing is left. */
export function slugify(name: string): string {
  const s = name
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return s.length > 0 ? s : `s-${newId('scope').slice(6, 14)}`;
}

function assertSlugFree(tx: Tx, parentId: string, slug: string, selfId?: string): void {
  const taken = tx.model.byUniqueKey(uniqueKey('scope.slug', parentId, slug));
  const pendingTaken = [...tx.puts.values()].some(
    (r) => r.kind === 'scope' && r.parentId === parentId && r.slug === slug && r.id !== selfId,
  );
  if ((taken && taken.id !== selfId && !tx.deletes.has(taken.id)) || pendingTaken) {
    throw new ScopeGateError('ALREADY_EXISTS', `A scope with slug '${slug}' already exists under this parent.`, [
      { path: 'slug', message: 'slug taken among siblings' },
    ]);
  }
}

/** Checks the type hierarchy and writes a scope under `parent`. */
export function putScope(
  tx: Tx,
  parent: ScopeRecord,
  fields: { id?: string; typeId: string; slug: string; name: string; externalId?: string | null; ownerId?: string | null },
): ScopeRecord {
  const type = tx.get('scopeType', fields.typeId);
  if (!type) throw new ScopeGateError('INVALID_REFERENCE', `Scope type '${fields.typeId}' does not exist.`, [{ path: 'typeId', message: 'no such scope type' }]);
  assertMayParent(tx, parent, fields.typeId, 'typeId', 'created');
  assertSlugFree(tx, parent.id, fields.slug);
  const scope: ScopeRecord = {
    kind: 'scope',
    ...tx.base('scope'),
    ...(fields.id ? { id: fields.id } : {}),
    tenantId: parent.tenantId,
    typeId: fields.typeId,
    slug: fields.slug,
    name: fields.name,
    parentId: parent.id,
    externalId: fields.externalId ?? null,
    ownerId: fields.ownerId ?? null,
  };
  return tx.put(scope);
}

/** The scope-type hierarchy allows a scope of `typeId` under `parent` (422 HIERARCHY_VIOLATION otherwise). */
function assertMayParent(tx: Tx, parent: ScopeRecord, typeId: string, path: string, verb: 'created' | 'moved'): void {
  tx.depend('global');
  if (!tx.get('scopeTypeEdge', edgeId(parent.typeId, typeId)) && !hasEdge(tx, parent.typeId, typeId)) {
    throw new ScopeGateError(
      'HIERARCHY_VIOLATION',
      `A scope of type '${typeId}' may not be ${verb} under a scope of type '${parent.typeId}'.`,
      [{ path, message: 'no scope-type-hierarchy edge', parentTypeId: parent.typeId, childTypeId: typeId }],
    );
  }
}

/**
 * Moves `scope` (and with it its whole subtree) under `parent`: one record rewritten, its `parentId`. Refused
 * under itself or a descendant (422 SCOPE_CYCLE), across tenants (422 CROSS_TENANT), where the type hierarchy
 * does not allow it (422 HIERARCHY_VIOLATION) and where a new sibling has its slug (409 ALREADY_EXISTS). Who
 * may move what (an API key within its subtree, never its own root) is the write guard's (access/principal.ts).
 */
export function moveScope(tx: Tx, scope: ScopeRecord, parent: ScopeRecord, path = 'parentScopeId'): ScopeRecord {
  if (scope.parentId === null) {
    throw new ScopeGateError('HIERARCHY_VIOLATION', 'Tenants are always roots; their scope cannot move.', [{ path, message: 'tenant is a root' }]);
  }
  if (parent.tenantId !== scope.tenantId) {
    throw new ScopeGateError('CROSS_TENANT', `Scope '${parent.id}' belongs to another tenant.`, [{ path, message: 'other tenant' }]);
  }
  // The new parent's ancestry, read through the transaction so its partition is part of the commit's check.
  for (let current: ScopeRecord | undefined = parent, depth = 0; current && depth < 1_000; depth++) {
    if (current.id === scope.id) {
      throw new ScopeGateError('SCOPE_CYCLE', `Scope '${scope.id}' cannot move under ${parent.id === scope.id ? 'itself' : `its own descendant '${parent.id}'`}.`, [
        { path, message: parent.id === scope.id ? 'the scope itself' : 'a descendant of the scope', id: parent.id },
      ]);
    }
    current = current.parentId === null ? undefined : tx.get('scope', current.parentId);
  }
  if (parent.id === scope.parentId) return scope;
  assertMayParent(tx, parent, scope.typeId, path, 'moved');
  assertSlugFree(tx, parent.id, scope.slug, scope.id);
  return tx.put({ ...scope, parentId: parent.id, updatedAt: tx.now });
}

function hasEdge(tx: Tx, parentTypeId: string, childTypeId: string): boolean {
  const edge = tx.model.byUniqueKey(uniqueKey('sth', parentTypeId, childTypeId));
  return edge !== undefined && !tx.deletes.has(edge.id);
}

export function createTenant(tx: Tx, input: Input<'tenantCreate'>): TenantRecord {
  const slug = input.slug ?? slugify(input.name);
  tx.depend('global');
  if (tx.model.byUniqueKey(uniqueKey('tenant.slug', slug))) {
    throw new ScopeGateError('ALREADY_EXISTS', `A tenant with slug '${slug}' already exists.`, [{ path: 'slug', message: 'slug taken' }]);
  }
  const base = tx.base('tenant');
  const scopeId = `scope_${base.id}`;
  const scope: ScopeRecord = {
    kind: 'scope',
    ...base,
    id: scopeId,
    tenantId: base.id,
    typeId: 'type_tenant',
    slug,
    name: input.name,
    parentId: null,
    externalId: input.externalId ?? null,
    ownerId: base.id,
  };
  tx.put(scope);
  // Tenant slugs are unique across the store: the global partition is touched so concurrent creates serialize.
  const tenant: TenantRecord = {
    kind: 'tenant',
    ...base,
    tenantId: base.id,
    scopeId,
    name: input.name,
    slug,
    tenantKind: input.kind,
    planKey: input.planKey ?? null,
    billingEmail: input.billingEmail ?? null,
    maxUsers: input.maxUsers ?? null,
    maxWorkspaces: input.maxWorkspaces ?? null,
    externalId: input.externalId ?? null,
    limits: input.limits ?? null,
  };
  tx.put(tenant);
  touchGlobal(tx);
  return tenant;
}

/**
 * Uniqueness that spans tenants (tenant slugs, user kindeIds) is protected by making the write move the
 * global partition, so two racing creates conflict. No record is rewritten: nothing derived from the scope
 * types (evaluate's resolved paths) is dropped, and no live session is re-decided.
 */
export function touchGlobal(tx: Tx): void {
  tx.touch('global');
}

export function patchTenant(tx: Tx, tenant: TenantRecord, input: Input<'tenantPatch'>): TenantRecord {
  const next: TenantRecord = {
    ...tenant,
    ...(input.name !== undefined ? { name: input.name } : {}),
    ...(input.kind !== undefined ? { tenantKind: input.kind } : {}),
    ...(input.planKey !== undefined ? { planKey: input.planKey } : {}),
    ...(input.billingEmail !== undefined ? { billingEmail: input.billingEmail } : {}),
    ...(input.maxUsers !== undefined ? { maxUsers: input.maxUsers } : {}),
    ...(input.maxWorkspaces !== undefined ? { maxWorkspaces: input.maxWorkspaces } : {}),
    ...(input.externalId !== undefined ? { externalId: input.externalId } : {}),
    ...(input.limits !== undefined ? { limits: input.limits } : {}),
    updatedAt: tx.now,
  };
  if (input.name !== undefined || input.externalId !== undefined) renameOwnedScope(tx, tenant.scopeId, input);
  return tx.put(next);
}

function renameOwnedScope(tx: Tx, scopeId: string, input: { name?: string | undefined; externalId?: string | null | undefined }) {
  const scope = tx.get('scope', scopeId);
  if (!scope) return;
  tx.put({
    ...scope,
    ...(input.name !== undefined ? { name: input.name } : {}),
    ...(input.externalId !== undefined ? { externalId: input.externalId } : {}),
    updatedAt: tx.now,
  });
}

export function patchEntity<R extends WorkspaceRecord | ProjectRecord | EnvironmentRecord>(
  tx: Tx,
  record: R,
  input: Input<'entityPatch'>,
): R {
  return renameEntity(tx, record, input);
}

/** The name and external id of an entity (and of the scope it owns); shared by the patches of every entity. */
function renameEntity<R extends WorkspaceRecord | ProjectRecord | EnvironmentRecord>(tx: Tx, record: R, input: { name?: string | undefined; externalId?: string | null | undefined }): R {
  renameOwnedScope(tx, record.scopeId, input);
  return tx.put({
    ...record,
    ...(input.name !== undefined ? { name: input.name } : {}),
    ...(input.externalId !== undefined ? { externalId: input.externalId } : {}),
    updatedAt: tx.now,
  });
}

/** A project: renamed like any entity, and its subtree's limits replaced when `limits` is given. */
export function patchProject(tx: Tx, project: ProjectRecord, input: Input<'limitedEntityPatch'>): ProjectRecord {
  const renamed = renameEntity(tx, project, { ...(input.name !== undefined ? { name: input.name } : {}), ...(input.externalId !== undefined ? { externalId: input.externalId } : {}) });
  return input.limits === undefined ? renamed : tx.put({ ...renamed, limits: input.limits });
}

export function createWorkspace(tx: Tx, input: Input<'workspaceCreate'>): WorkspaceRecord {
  const tenant = tx.ref('tenant', input.tenantId, 'tenantId');
  const tenantScope = tx.ref('scope', tenant.scopeId, 'tenantId');
  if (tenant.maxWorkspaces !== null) {
    const count = tx.model.childScopes(tenantScope.id).filter((s) => s.typeId === 'type_workspace').length;
    if (count >= tenant.maxWorkspaces) {
      throw new ScopeGateError('LIMIT_EXCEEDED', `Tenant '${tenant.id}' already has its maximum of ${tenant.maxWorkspaces} workspaces.`, [
        { path: 'tenantId', message: 'maxWorkspaces reached', limit: tenant.maxWorkspaces },
      ]);
    }
  }
  const base = tx.base('workspace');
  const slug = input.slug ?? slugify(input.name);
  const scope = putScope(tx, tenantScope, {
    id: `scope_${base.id}`,
    typeId: 'type_workspace',
    slug,
    name: input.name,
    externalId: input.externalId ?? null,
    ownerId: base.id,
  });
  return tx.put({
    kind: 'workspace',
    ...base,
    tenantId: tenant.id,
    scopeId: scope.id,
    name: input.name,
    slug,
    externalId: input.externalId ?? null,
  });
}

export function createProject(tx: Tx, input: Input<'projectCreate'>): ProjectRecord {
  const workspace = tx.ref('workspace', input.workspaceId, 'workspaceId');
  const tenant = tx.ref('tenant', input.tenantId ?? workspace.tenantId, 'tenantId');
  if (workspace.tenantId !== tenant.id) {
    throw new ScopeGateError('CROSS_TENANT', `Workspace '${workspace.id}' belongs to another tenant.`, [{ path: 'workspaceId', message: 'other tenant' }]);
  }
  const parent = tx.ref('scope', workspace.scopeId, 'workspaceId');
  const base = tx.base('project');
  const slug = input.slug ?? slugify(input.name);
  const scope = putScope(tx, parent, {
    id: `scope_${base.id}`,
    typeId: 'type_project',
    slug,
    name: input.name,
    externalId: input.externalId ?? null,
    ownerId: base.id,
  });
  return tx.put({
    kind: 'project',
    ...base,
    tenantId: tenant.id,
    workspaceId: workspace.id,
    scopeId: scope.id,
    name: input.name,
    slug,
    externalId: input.externalId ?? null,
    limits: input.limits ?? null,
  });
}

export function createEnvironment(tx: Tx, input: Input<'environmentCreate'>): EnvironmentRecord {
  const project = tx.ref('project', input.projectId, 'projectId');
  const tenant = tx.ref('tenant', input.tenantId ?? project.tenantId, 'tenantId');
  if (project.tenantId !== tenant.id) {
    throw new ScopeGateError('CROSS_TENANT', `Project '${project.id}' belongs to another tenant.`, [{ path: 'projectId', message: 'other tenant' }]);
  }
  const parent = tx.ref('scope', project.scopeId, 'projectId');
  const base = tx.base('environment');
  const slug = input.slug ?? slugify(input.name);
  const scope = putScope(tx, parent, {
    id: `scope_${base.id}`,
    typeId: 'type_environment',
    slug,
    name: input.name,
    externalId: input.externalId ?? null,
    ownerId: base.id,
  });
  return tx.put({
    kind: 'environment',
    ...base,
    tenantId: tenant.id,
    projectId: project.id,
    scopeId: scope.id,
    name: input.name,
    slug,
    externalId: input.externalId ?? null,
  });
}

/** `POST /scopes`: a scope of any non-entity type under `parentScopeId`. */
export function createScope(tx: Tx, input: Input<'scopeCreate'>): ScopeRecord {
  const parent = tx.ref('scope', input.parentScopeId, 'parentScopeId');
  if (ENTITY_TYPES.has(input.typeId)) {
    throw new ScopeGateError(
      'RULE_VIOLATION',
      `Scopes of type '${input.typeId}' are created with their entity (POST /v1/${input.typeId.slice(5)}s), not via /scopes.`,
      [{ path: 'typeId', message: 'entity-owned scope type' }],
    );
  }
  return putScope(tx, parent, {
    typeId: input.typeId,
    slug: input.slug ?? slugify(input.name),
    name: input.name,
    externalId: input.externalId ?? null,
  });
}

export function patchScope(tx: Tx, scope: ScopeRecord, input: Input<'limitedEntityPatch'>): ScopeRecord {
  return changeScopeFields(tx, scope, input);
}

/** A scope's name, external id and limits: shared by `PATCH /scopes/{id}` and the access-scope patch. */
export function changeScopeFields(tx: Tx, scope: ScopeRecord, input: { name?: string | undefined; externalId?: string | null | undefined; limits?: ScopeRecord['limits'] | undefined }): ScopeRecord {
  if (input.limits !== undefined && scope.ownerId !== null) {
    // An owned scope's limits live on its owner (the tenant or project the API patches): one place each.
    throw new ScopeGateError('RULE_VIOLATION', `Limits of scope '${scope.id}' are set on the entity that owns it ('${scope.ownerId}').`, [{ path: 'limits', message: 'set them on the owner' }]);
  }
  return tx.put({
    ...scope,
    ...(input.name !== undefined ? { name: input.name } : {}),
    ...(input.externalId !== undefined ? { externalId: input.externalId } : {}),
    ...(input.limits !== undefined ? { limits: input.limits } : {}),
    updatedAt: tx.now,
  });
}

export function createScopeType(tx: Tx, input: Input<'scopeTypeCreate'>): ScopeTypeRecord {
  if (tx.get('scopeType', input.id)) {
    throw new ScopeGateError('ALREADY_EXISTS', `Scope type '${input.id}' already exists.`, [{ path: 'id', message: 'taken' }]);
  }
  tx.depend('global');
  return tx.put({
    kind: 'scopeType',
    id: input.id,
    tenantId: null,
    name: input.name,
    config: { permissionMode: input.config.permissionMode },
    builtIn: false,
    createdAt: tx.now,
    updatedAt: tx.now,
  });
}

export function createScopeTypeEdge(tx: Tx, input: Input<'scopeTypeEdgeCreate'>): ScopeTypeEdgeRecord {
  tx.ref('scopeType', input.parentTypeId, 'parentTypeId');
  tx.ref('scopeType', input.childTypeId, 'childTypeId');
  if (input.childTypeId === 'type_tenant') {
    throw new ScopeGateError('HIERARCHY_VIOLATION', 'Tenants are always roots; nothing may be their parent.', [{ path: 'childTypeId', message: 'tenant is a root' }]);
  }
  const id = edgeId(input.parentTypeId, input.childTypeId);
  if (tx.get('scopeTypeEdge', id)) {
    throw new ScopeGateError('ALREADY_EXISTS', `The edge ${input.parentTypeId} → ${input.childTypeId} already exists.`, [{ message: 'duplicate edge' }]);
  }
  return tx.put({
    kind: 'scopeTypeEdge',
    id,
    tenantId: null,
    parentTypeId: input.parentTypeId,
    childTypeId: input.childTypeId,
    builtIn: false,
    createdAt: tx.now,
    updatedAt: tx.now,
  });
}

export function patchScopeType(tx: Tx, type: ScopeTypeRecord, input: Input<'scopeTypePatch'>): ScopeTypeRecord {
  return tx.put({ ...type, ...(input.name !== undefined ? { name: input.name } : {}), updatedAt: tx.now });
}
