import { Router } from 'express';
import { schemas } from '../http/schemas.ts';
import { parse } from '../http/validate.ts';
import {
  createEnvironment,
  createProject,
  createScope,
  createScopeType,
  createScopeTypeEdge,
  createTenant,
  createWorkspace,
  patchEntity,
  patchProject,
  patchScope,
  patchScopeType,
  patchTenant,
} from '../service/scopes.ts';
import {
  assignRole,
  createMembership,
  createPermission,
  createRole,
  createUser,
  linkRolePermission,
  patchRole,
  patchUser,
  setPermissionOverride,
  setRolePermissionOverride,
} from '../service/rbac.ts';
import type { SidecarContext } from './context.ts';
import { findVisible, mountResource } from './resource.ts';
import { effectiveLimitsAt, ownLimitsOf } from '../engine/limits.ts';

/** Seed 001's management API under /v1: the scope tree, roles, permissions, subjects and overrides. */
export function managementRoutes(ctx: SidecarContext): Router {
  const r = Router();
  const m = (spec: Parameters<typeof mountResource>[2]) => mountResource(r, ctx, spec);

  m({ kind: 'tenant', path: '/tenants', name: 'tenant', create: { schema: schemas.tenantCreate, run: createTenant as never }, patch: { schema: schemas.tenantPatch, run: patchTenant as never }, filters: ['slug', 'externalId'] });
  m({ kind: 'workspace', path: '/workspaces', name: 'workspace', create: { schema: schemas.workspaceCreate, run: createWorkspace as never }, patch: { schema: schemas.entityPatch, run: patchEntity as never }, filters: ['tenantId'] });
  m({ kind: 'project', path: '/projects', name: 'project', create: { schema: schemas.projectCreate, run: createProject as never }, patch: { schema: schemas.limitedEntityPatch, run: patchProject as never }, filters: ['tenantId', 'workspaceId'] });
  m({ kind: 'environment', path: '/environments', name: 'environment', create: { schema: schemas.environmentCreate, run: createEnvironment as never }, patch: { schema: schemas.entityPatch, run: patchEntity as never }, filters: ['tenantId', 'projectId'] });
  m({ kind: 'scope', path: '/scopes', name: 'scope', create: { schema: schemas.scopeCreate, run: createScope as never }, patch: { schema: schemas.limitedEntityPatch, run: patchScope as never }, filters: ['tenantId', 'parentId', 'typeId', 'externalId'] });
  m({ kind: 'scopeType', path: '/scope-types', name: 'scope_type', batch: { schema: schemas.scopeTypeCreate, run: createScopeType as never }, patch: { schema: schemas.scopeTypePatch, run: patchScopeType as never } });
  m({ kind: 'scopeTypeEdge', path: '/scope-type-hierarchy', name: 'scope_type_edge', batch: { schema: schemas.scopeTypeEdgeCreate, run: createScopeTypeEdge as never }, filters: ['parentTypeId', 'childTypeId'] });
  m({ kind: 'role', path: '/roles', name: 'role', batch: { schema: schemas.roleCreate, run: createRole as never }, create: { schema: schemas.roleCreate, run: createRole as never }, patch: { schema: schemas.rolePatch, run: patchRole as never }, filters: ['tenantId', 'scopeId'] });
  m({ kind: 'permission', path: '/permissions', name: 'permission', batch: { schema: schemas.permissionCreate, run: createPermission as never }, create: { schema: schemas.permissionCreate, run: createPermission as never }, filters: ['tenantId', 'scopeId', 'key'] });
  m({ kind: 'rolePermission', path: '/role-permissions', name: 'role_permission', batch: { schema: schemas.rolePermissionCreate, run: linkRolePermission as never }, create: { schema: schemas.rolePermissionCreate, run: linkRolePermission as never }, filters: ['tenantId', 'roleId', 'permissionId'] });
  m({ kind: 'user', path: '/users', name: 'user', create: { schema: schemas.userCreate, run: createUser as never }, patch: { schema: schemas.userPatch, run: patchUser as never }, filters: ['defaultTenantId', 'kindeId', 'email', 'subjectId'] });
  m({ kind: 'membership', path: '/memberships', name: 'membership', create: { schema: schemas.membershipCreate, run: createMembership as never }, filters: ['tenantId', 'subjectId', 'scopeId'] });
  m({ kind: 'roleAssignment', path: '/role-assignments', name: 'role_assignment', create: { schema: schemas.roleAssignmentCreate, run: assignRole as never }, filters: ['tenantId', 'roleId', 'membershipId'] });
  m({ kind: 'permissionOverride', path: '/scope-overrides/permissions', name: 'permission_override', create: { schema: schemas.permissionOverride, run: setPermissionOverride as never }, filters: ['tenantId', 'childScopeId', 'permissionId'] });
  m({ kind: 'rolePermissionOverride', path: '/scope-overrides/role-permissions', name: 'role_permission_override', create: { schema: schemas.rolePermissionOverride, run: setRolePermissionOverride as never }, filters: ['tenantId', 'childScopeId', 'roleId', 'permissionId'] });

  // The limits in force at a scope: its own, the effective per-session bounds (and which scope set each),
  // and the subtree bounds of every scope on its path.
  ctx.routes.add({ method: 'get', path: '/scopes/{id}/limits', tag: 'scope', summary: 'Own and effective MQTT limits at a scope (a child only narrows its ancestors)' });
  r.get('/scopes/:id/limits', (req, res) => {
    const scope = findVisible(ctx, res, 'scope', String(req.params.id), 'scope');
    const model = ctx.replica.model;
    const { session, subtrees, sources } = effectiveLimitsAt(model, scope.id);
    res.json({ scopeId: scope.id, own: ownLimitsOf(model, scope), effective: { session, sources, subtrees }, revision: ctx.replica.seq });
  });

  ctx.routes.add({ method: 'get', path: '/audit', tag: 'audit', summary: 'The audit log, newest first', query: schemas.auditQuery });
  r.get('/audit', async (req, res) => {
    const query = parse(schemas.auditQuery, req.query, 'query');
    const principal = res.locals.principal as import('../access/principal.ts').Principal;
    const tenantId = principal.kind === 'apiKey' ? principal.tenantId : query.tenantId;
    const entries = await ctx.store.audit({ limit: query.limit, ...(query.before ? { before: query.before } : {}), ...(tenantId ? { tenantId } : {}) });
    const last = entries[entries.length - 1];
    res.json({ data: entries, nextBefore: entries.length === query.limit && last ? last.seq : null });
  });

  // Writes report the revision; this lets a client ask which revision a replica has reached.
  ctx.routes.add({ method: 'get', path: '/revision', tag: 'evaluate', summary: 'The store revision this replica has applied' });
  r.get('/revision', (_req, res) => {
    res.json({ revision: ctx.replica.seq });
  });

  return r;
}
