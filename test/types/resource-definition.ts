/**
 * Type-level test, checked by `tsc --noEmit` (part of `npm test`), never run: a resource definition pairs
 * each handler with the schema of its own input. Every `@ts-expect-error` below must be an error, or tsc fails
 * with "Unused '@ts-expect-error' directive" — so a change that lets a wrong pairing compile breaks the build.
 */
import type { Router } from 'express';
import type { RecordKind } from '../../authz-sidecar/model/records.ts';
import { mountResource, type ResourceSpec } from '../../authz-sidecar/routes/resource.ts';
import type { SidecarContext } from '../../authz-sidecar/routes/context.ts';
import { inputSchemas } from '../../authz-sidecar/service/inputs.ts';
import { createRole, patchRole, patchUser } from '../../authz-sidecar/service/rbac.ts';
import { createTenant, createWorkspace, patchEntity, patchScopeType, patchTenant } from '../../authz-sidecar/service/scopes.ts';

declare const router: Router;
declare const ctx: SidecarContext;
const m = <K extends RecordKind, C extends import('zod').ZodType, B extends import('zod').ZodType, P extends import('zod').ZodType>(spec: ResourceSpec<K, C, B, P>) => mountResource(router, ctx, spec);

export function rightPairings(): void {
  m({ kind: 'tenant', path: '/t', name: 't', create: { schema: inputSchemas.tenantCreate, run: createTenant }, patch: { schema: inputSchemas.tenantPatch, run: patchTenant } });
  m({ kind: 'workspace', path: '/w', name: 'w', create: { schema: inputSchemas.workspaceCreate, run: createWorkspace }, patch: { schema: inputSchemas.entityPatch, run: patchEntity } });
  m({ kind: 'role', path: '/r', name: 'r', batch: { schema: inputSchemas.roleCreate, run: createRole }, patch: { schema: inputSchemas.rolePatch, run: patchRole } });
}

export function wrongPairings(): void {
  // A create handler with another resource's schema (different shape).
  // @ts-expect-error workspaceCreate's input is not createTenant's
  m({ kind: 'tenant', path: '/t', name: 't', create: { schema: inputSchemas.workspaceCreate, run: createTenant } });

  // The same shape under another name: entityPatch {name?, externalId?} would structurally satisfy
  // patchScopeType's {name?}; the brand per schema refuses it.
  // @ts-expect-error entityPatch is not scopeTypePatch, though its output has every field patchScopeType reads
  m({ kind: 'scopeType', path: '/st', name: 'st', patch: { schema: inputSchemas.entityPatch, run: patchScopeType } });

  // A batch handler with another schema.
  // @ts-expect-error tenantCreate is not roleCreate
  m({ kind: 'role', path: '/r', name: 'r', batch: { schema: inputSchemas.tenantCreate, run: createRole } });

  // A patch handler for another kind of record.
  // @ts-expect-error patchUser patches users, not roles
  m({ kind: 'role', path: '/r', name: 'r', patch: { schema: inputSchemas.userPatch, run: patchUser } });

  // Calling a service handler with an unvalidated object: inputs only come from their schema.
  // @ts-expect-error a plain object is not a validated tenantCreate input
  createTenant(undefined as never, { name: 'x', kind: 'standard' });
}
