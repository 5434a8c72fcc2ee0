import { Router } from 'express';
import type { z } from 'zod';
import type { RecordKind } from '../model/records.ts';
import { queries } from '../http/queries.ts';
import * as responses from '../http/responses.ts';
import { inputSchemas } from '../service/inputs.ts';
import { parse } from '../http/validate.ts';
import { auditFor } from '../http/audit-view.ts';
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
import { findVisible, mountResource, type ResourceSpec } from './resource.ts';
import { effectiveLimitsAt, ownLimitsOf } from '../engine/limits.ts';

/** Seed 001's management API under /v1: the scope tree, roles, permissions, subjects and overrides. */
export function managementRoutes(ctx: SidecarContext): Router {
  const r = Router();
  const m = <K extends RecordKind, C extends z.ZodType, B extends z.ZodType, P extends z.ZodType>(spec: ResourceSpec<K, C, B, P>) => mountResource(r, ctx, spec);

  m({ kind: 'tenant', path: '/tenants', name: 'tenant', create: { schema: inputSchemas.tenantCreate, run: createTenant }, patch: { schema: inputSchemas.tenantPatch, run: patchTenant }, filters: ['slug', 'externalId'] });
  m({ kind: 'workspace', path: '/workspaces', name: 'workspace', create: { schema: inputSchemas.workspaceCreate, run: createWorkspace }, patch: { schema: inputSchemas.entityPatch, run: patchEntity }, filters: ['tenantId'] });
  m({ kind: 'project', path: '/projects', name: 'project', create: { schema: inputSchemas.projectCreate, run: createProject }, patch: { schema: inputSchemas.limitedEntityPatch, run: patchProject }, filters: ['tenantId', 'workspaceId'] });
  m({ kind: 'environment', path: '/environments', name: 'environment', create: { schema: inputSchemas.environmentCreate, run: createEnvironment }, patch: { schema: inputSchemas.entityPatch, run: patchEntity }, filters: ['tenantId', 'projectId'] });
  m({ kind: 'scope', path: '/scopes', name: 'scope', create: { schema: inputSchemas.scopeCreate, run: createScope }, patch: { schema: inputSchemas.limitedEntityPatch, run: patchScope }, filters: ['tenantId', 'parentId', 'typeId', 'externalId'] });
  m({ kind: 'scopeType', path: '/scope-types', name: 'scope_type', batch: { schema: inputSchemas.scopeTypeCreate, run: createScopeType }, patch: { schema: inputSchemas.scopeTypePatch, run: patchScopeType } });
  m({ kind: 'scopeTypeEdge', path: '/scope-type-hierarchy', name: 'scope_type_edge', batch: { schema: inputSchemas.scopeTypeEdgeCreate, run: createScopeTypeEdge }, filters: ['parentTypeId', 'childTypeId'] });
  m({ kind: 'role', path: '/roles', name: 'role', batch: { schema: inputSchemas.roleCreate, run: createRole }, create: { schema: inputSchemas.roleCreate, run: createRole }, patch: { schema: inputSchemas.rolePatch, run: patchRole }, filters: ['tenantId', 'scopeId'] });
  m({ kind: 'permission', path: '/permissions', name: 'permission', batch: { schema: inputSchemas.permissionCreate, run: createPermission }, create: { schema: inputSchemas.permissionCreate, run: createPermission }, filters: ['tenantId', 'scopeId', 'key'] });
  m({ kind: 'rolePermission', path: '/role-permissions', name: 'role_permission', batch: { schema: inputSchemas.rolePermissionCreate, run: linkRolePermission }, create: { schema: inputSchemas.rolePermissionCreate, run: linkRolePermission }, filters: ['tenantId', 'roleId', 'permissionId'] });
  m({ kind: 'user', path: '/users', name: 'user', create: { schema: inputSchemas.userCreate, run: createUser }, patch: { schema: inputSchemas.userPatch, run: patchUser }, filters: ['defaultTenantId', 'kindeId', 'email', 'subjectId'] });
  m({ kind: 'membership', path: '/memberships', name: 'membership', create: { schema: inputSchemas.membershipCreate, run: createMembership }, filters: ['tenantId', 'subjectId', 'scopeId'] });
  m({ kind: 'roleAssignment', path: '/role-assignments', name: 'role_assignment', create: { schema: inputSchemas.roleAssignmentCreate, run: assignRole }, filters: ['tenantId', 'roleId', 'membershipId'] });
  m({ kind: 'permissionOverride', path: '/scope-overrides/permissions', name: 'permission_override', create: { schema: inputSchemas.permissionOverride, run: setPermissionOverride }, filters: ['tenantId', 'childScopeId', 'permissionId'] });
  m({ kind: 'rolePermissionOverride', path: '/scope-overrides/role-permissions', name: 'role_permission_override', create: { schema: inputSchemas.rolePermissionOverride, run: setRolePermissionOverride }, filters: ['tenantId', 'childScopeId', 'roleId', 'permissionId'] });

  // The limits in force at a scope: its own, the effective per-session bounds (and which scope set each),
  // and the subtree bounds of every scope on its path.
  ctx.routes.add({ method: 'get', path: '/scopes/{id}/limits', tag: 'scope', summary: 'Own and effective MQTT limits at a scope (a child only narrows its ancestors)', response: responses.scopeLimits });
  r.get('/scopes/:id/limits', (req, res) => {
    const scope = findVisible(ctx, res, 'scope', String(req.params.id), 'scope');
    const model = ctx.replica.model;
    const { session, subtrees, sources } = effectiveLimitsAt(model, scope.id);
    res.json({ scopeId: scope.id, own: ownLimitsOf(model, scope), effective: { session, sources, subtrees }, revision: ctx.replica.seq });
  });

  ctx.routes.add({ method: 'get', path: '/audit', tag: 'audit', summary: 'The audit log, newest first', query: queries.auditQuery, response: responses.auditPage });
  r.get('/audit', async (req, res) => {
    const query = parse(queries.auditQuery, req.query, 'query');
    res.json(await auditFor(ctx.store, ctx.replica.model, res.locals.principal as import('../access/principal.ts').Principal, query));
  });

  // Writes report the revision; this lets a client ask which revision a replica has reached.
  ctx.routes.add({ method: 'get', path: '/revision', tag: 'evaluate', summary: 'The store revision this replica has applied', response: responses.revisionResponse });
  r.get('/revision', (_req, res) => {
    res.json({ revision: ctx.replica.seq });
  });

  return r;
}
