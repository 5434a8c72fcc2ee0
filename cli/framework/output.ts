/**
 * What commands print: the raw JSON with --json, otherwise a table (or key/value block) with the columns of
 * each kind of resource.
 */
import type { Page } from '../../client/index.ts';
import { table, type Column } from '../format.ts';
import type { Ctx } from './command.ts';

export function print(ctx: Ctx, data: unknown, human: () => string): void {
  ctx.out(ctx.json ? `${JSON.stringify(data, null, 2)}\n` : human());
}

export const col = (header: string, value: Column['value'], max?: number): Column => ({ header, value, ...(max ? { max } : {}) });
export const COLUMNS = {
  tenant: [col('id', 'id'), col('slug', 'slug'), col('name', 'name'), col('kind', 'kind'), col('scope', 'scopeId')],
  workspace: [col('id', 'id'), col('slug', 'slug'), col('name', 'name'), col('tenant', 'tenantId'), col('scope', 'scopeId')],
  project: [col('id', 'id'), col('slug', 'slug'), col('name', 'name'), col('workspace', 'workspaceId'), col('scope', 'scopeId')],
  environment: [col('id', 'id'), col('slug', 'slug'), col('name', 'name'), col('project', 'projectId'), col('scope', 'scopeId')],
  scope: [col('id', 'id'), col('slug', 'slug'), col('name', 'name'), col('parent', 'parentId')],
  app: [col('id', 'id'), col('slug', 'slug'), col('name', 'name'), col('mode', 'mode')],
  appGrant: [col('id', 'id'), col('app', 'appId'), col('actor', 'actorId')],
  actor: [col('id', 'id'), col('name', 'name'), col('kind', 'kind'), col('scope', 'accessScopeId'), col('disabled', 'disabled'), col('subject', 'subjectId')],
  secret: [col('id', 'id'), col('actor', 'actorId'), col('prefix', 'prefix'), col('created', 'createdAt')],
  delegation: [col('id', 'id'), col('agent', 'actorId'), col('on behalf of', 'principalSubjectId'), col('expires', 'expiresAt'), col('created by', 'createdBy')],
  role: [col('id', 'id'), col('name', 'name'), col('scope', 'scopeId'), col('description', 'description', 40)],
  permission: [col('id', 'id'), col('key', 'key'), col('action', 'action'), col('resource type', 'resourceType'), col('pattern', 'resourcePattern'), col('scope', 'scopeId')],
  rolePermission: [col('id', 'id'), col('role', 'roleId'), col('permission', 'permissionId')],
  user: [col('id', 'id'), col('email', 'email'), col('kinde id', 'kindeId'), col('subject', 'subjectId'), col('default tenant', 'defaultTenantId')],
  membership: [col('id', 'id'), col('subject', 'subjectId'), col('scope', 'scopeId')],
  roleAssignment: [col('id', 'id'), col('role', 'roleId'), col('membership', 'membershipId')],
  session: [col('session', 'sessionId'), col('actor', 'actorId'), col('client id', 'clientId', 30), col('scope', (r) => r.accessScopeId ?? '(project)'), col('broker', 'brokerId', 24), col('since', 'connectedAt'), col('state', 'state'), col('subscriptions', (r) => (Array.isArray(r.subscriptions) ? r.subscriptions.join(' ') : ''), 60)],
  audit: [col('seq', 'seq'), col('at', 'at'), col('principal', 'principal'), col('action', 'action'), col('tenants', (r) => (Array.isArray(r.tenantIds) ? r.tenantIds.join(',') : r.tenantIds)), col('ids', auditIds, 70)],
} satisfies Record<string, Column[]>;
export type Kind = keyof typeof COLUMNS;

function auditIds(r: Record<string, unknown>): string {
  const ids = new Set<string>();
  for (const side of [r.after, r.before]) {
    if (!Array.isArray(side)) continue;
    for (const x of side) if (x && typeof x === 'object' && typeof (x as { id?: unknown }).id === 'string') ids.add((x as { id: string }).id);
  }
  return [...ids].join(',');
}

export function showOne(ctx: Ctx, kind: Kind, data: Record<string, unknown>): void {
  print(ctx, data, () => table([data], COLUMNS[kind]));
}

export function printPage(ctx: Ctx, kind: Kind, page: Page<Record<string, unknown>>): void {
  print(ctx, page, () => `${table(page.data, COLUMNS[kind])}${page.nextCursor ? `(more: --cursor ${page.nextCursor}, or --all)\n` : ''}`);
}

export function printDeleted(ctx: Ctx, res: { deleted: Array<{ kind: string; id: string }>; revision: number }): void {
  print(ctx, res, () => table(res.deleted as unknown as Array<Record<string, unknown>>, [col('deleted', 'kind'), col('id', 'id')]));
}

