/**
 * Real answers against the documented ones: a walk through both seeds' flows, then every GET route the
 * document lists, each 2xx answer validated against the route's response schema (the one the OpenAPI
 * document is generated from), with no field the schema does not name.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import type { RouteDoc } from '../authz-sidecar/routes/registry.ts';
import { startSidecar, type TestSidecar } from './helpers/sidecar.ts';

let s: TestSidecar;
let routes: RouteDoc[];
const covered = new Set<string>();
const problems: string[] = [];

function routeFor(method: string, path: string): RouteDoc | undefined {
  const bare = path.split('?')[0]!;
  return routes.find((r) => {
    if (r.method !== method.toLowerCase()) return false;
    const want = `${r.root ? '' : '/v1'}${r.path}`.split('/');
    const got = bare.split('/');
    return want.length === got.length && want.every((w, i) => (w.startsWith('{') ? got[i]!.length > 0 : w === got[i]));
  });
}

/** Keys of `input` (deep) that parsing dropped: fields the schema does not document. */
function undocumented(input: unknown, output: unknown, at = ''): string[] {
  if (Array.isArray(input) && Array.isArray(output)) return input.flatMap((v, i) => undocumented(v, output[i], `${at}[${i}]`));
  if (input && typeof input === 'object' && output && typeof output === 'object') {
    const out = output as Record<string, unknown>;
    return Object.entries(input as Record<string, unknown>).flatMap(([k, v]) => (k in out ? undocumented(v, out[k], `${at}.${k}`) : [`${at}.${k}`]));
  }
  return [];
}

async function call(method: string, path: string, body?: unknown, token?: string): Promise<any> {
  const res = await fetch(`${s.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token ?? s.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const route = routeFor(method, path);
  const name = `${method} ${path.split('?')[0]}`;
  if (!route) {
    problems.push(`${name}: no documented route`);
    return undefined;
  }
  if (res.status >= 300) throw new Error(`${name} → ${res.status} ${text.slice(0, 300)}`);
  if (res.status !== (route.status ?? 200)) problems.push(`${name}: answered ${res.status}, documented ${route.status ?? 200}`);
  const key = `${route.method} ${route.root ? '' : '/v1'}${route.path}`;
  covered.add(key);
  const json = route.contentType ? text : JSON.parse(text);
  const parsed = (route.response as z.ZodType).safeParse(json);
  if (!parsed.success) problems.push(`${name}: ${parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`);
  else if (!route.contentType) for (const field of undocumented(json, parsed.data)) problems.push(`${name}: undocumented field ${field}`);
  return json;
}

beforeAll(async () => {
  s = await startSidecar();
  routes = s.sidecar.routes.all();
});
afterAll(() => s?.close());

describe('answers match the OpenAPI document', () => {
  const ids: Record<string, string> = {};

  it('seed 001: the tree, roles, permissions, overrides, users, decisions', async () => {
    const t = await call('POST', '/v1/tenants', { name: 'Acme', slug: 'acme', maxUsers: 10 });
    ids.tenant = t.id;
    const ws = await call('POST', '/v1/workspaces', { tenantId: t.id, name: 'Eng' });
    const p = await call('POST', '/v1/projects', { workspaceId: ws.id, name: 'API' });
    Object.assign(ids, { workspace: ws.id, project: p.id, projectScope: p.scopeId });
    const env = await call('POST', '/v1/environments', { projectId: p.id, name: 'Prod' });
    ids.env = env.id;
    await call('POST', '/v1/scope-types/batch', [{ id: 'type_site', name: 'Site', config: { permissionMode: 'merge' } }]);
    await call('POST', '/v1/scope-type-hierarchy/batch', [{ parentTypeId: 'type_environment', childTypeId: 'type_site' }]);
    const site = await call('POST', '/v1/scopes', { parentScopeId: env.scopeId, typeId: 'type_site', slug: 'tower', name: 'Tower' });
    const roles = await call('POST', '/v1/roles/batch', [{ name: 'Dev', scopeId: p.scopeId }]);
    const viewer = await call('POST', '/v1/roles', { name: 'Viewer', scopeId: p.scopeId });
    const perms = await call('POST', '/v1/permissions/batch', [{ scopeId: p.scopeId, action: 'read', resourceType: '*', resourcePattern: '*', key: '*:read:*' }]);
    const deploy = await call('POST', '/v1/permissions', { scopeId: p.scopeId, action: 'deploy', resourceType: 'environment', resourcePattern: '*', key: 'environment:deploy:*' });
    await call('POST', '/v1/role-permissions/batch', [{ roleId: roles.data[0].id, permissionId: perms.data[0].id }]);
    await call('POST', '/v1/role-permissions', { roleId: roles.data[0].id, permissionId: deploy.id });
    const user = await call('POST', '/v1/users', { kindeId: 'kp_jane', email: 'jane@acme.example', firstName: 'Jane', defaultTenantId: t.id });
    ids.jane = user.subjectId;
    const m = await call('POST', '/v1/memberships', { subjectId: user.subjectId, scopeId: p.scopeId });
    await call('POST', '/v1/role-assignments', { roleId: roles.data[0].id, membershipId: m.id });
    await call('POST', '/v1/scope-overrides/permissions', { childScopeId: site.id, permissionId: perms.data[0].id, state: 'disabled' });
    await call('POST', '/v1/scope-overrides/role-permissions', { childScopeId: env.scopeId, roleId: roles.data[0].id, permissionId: deploy.id, state: 'disabled' });
    const request = { actor: { subjectId: user.subjectId, subjectType: 'user' }, scopeId: env.scopeId, action: 'deploy', resource: { resourceType: 'environment' } };
    expect((await call('POST', '/v1/evaluate', request)).decision).toBe('DENIED');
    expect((await call('POST', '/v1/evaluate?explain=true', { ...request, scopeId: p.scopeId })).decision).toBe('ALLOWED');
    await call('POST', '/v1/evaluate/batch', { requests: [request, { ...request, scopeId: p.scopeId }] });
    for (const [path, body] of [
      [`/v1/tenants/${t.id}`, { name: 'Acme Corp' }],
      [`/v1/workspaces/${ws.id}`, { name: 'Engineering' }],
      [`/v1/projects/${p.id}`, { name: 'API Service' }],
      [`/v1/environments/${env.id}`, { name: 'Production' }],
      [`/v1/roles/${viewer.id}`, { name: 'Viewers' }],
      [`/v1/scopes/${site.id}`, { name: 'Downtown Tower' }],
      [`/v1/users/${user.id}`, { firstName: 'Janet' }],
      [`/v1/scope-types/type_site`, { name: 'Job site' }],
    ] as const) {
      await call('PATCH', path, body);
    }
    await call('DELETE', `/v1/roles/${viewer.id}`);
  });

  it("seed 000: access scopes, actors, apps, grants, credentials, keys, limits, MQTT explain", async () => {
    const base = `/v1/organizations/${ids.tenant}/projects/${ids.project}`;
    const scope = await call('POST', `${base}/scopes`, { slug: 'customer-a', name: 'Customer A' });
    const actor = await call('POST', `${base}/actors`, { name: 'sensor-1', kind: 'device', accessScopeId: scope.accessScopeId });
    const app = await call('POST', `${base}/apps`, { slug: 'fleet', name: 'Fleet' });
    await call('POST', `${base}/apps/${app.appId}/actors`, { actorId: actor.actorId });
    await call('POST', `${base}/actors/${actor.actorId}/tokens`, { ttlSeconds: 600 });
    const secret = await call('POST', `${base}/actors/${actor.actorId}/secrets`, {});
    await call('PATCH', `${base}/scopes/${scope.accessScopeId}`, { name: 'Customer A, Inc.' });
    await call('PATCH', `${base}/actors/${actor.actorId}`, { name: 'sensor-one' });
    await call('PATCH', `${base}/apps/${app.appId}`, { name: 'Fleet app' });
    await call('POST', '/v1/mqtt/explain', { actorId: actor.actorId, topic: 'fleet/telemetry', action: 'publish' });
    await call('POST', '/v1/api-keys', { name: 'ops', scopeId: ids.projectScope });
    const agent = await call('POST', `${base}/actors`, { name: 'planner', kind: 'agent', accessScopeId: scope.accessScopeId });
    const delegation = await call('POST', `${base}/actors/${agent.actorId}/delegations`, { subjectId: actor.subjectId, expiresInSeconds: 600 });
    await call('GET', `${base}/actors/${agent.actorId}/delegations`);
    await call('DELETE', `${base}/actors/${agent.actorId}/delegations/${delegation.id}`);
    const authzen = { subject: { type: 'user', id: ids.jane }, action: { name: 'read' }, resource: { type: 'document', id: 'd1', properties: { scopeId: ids.projectScope } } };
    await call('POST', '/access/v1/evaluation', authzen);
    await call('POST', '/access/v1/evaluations', { evaluations: [authzen, { ...authzen, action: { name: 'deploy' } }] });
    Object.assign(ids, { base, accessScope: scope.accessScopeId, actor: actor.actorId, app: app.appId, secret: secret.secretId });
    await call('DELETE', `${base}/actors/${actor.actorId}/secrets/${secret.secretId}`);
    await call('DELETE', `${base}/apps/${app.appId}/actors/${actor.actorId}`);
  });

  it('every GET route the document lists, filled with the ids made above', async () => {
    const byParam: Record<string, string | undefined> = { file: 'app.js', orgId: ids.tenant, projectId: ids.project, actorId: ids.actor, appId: ids.app, scopeId: ids.accessScope };
    for (const route of routes) {
      if (route.method !== 'get' || route.contentType === 'text/event-stream') continue;
      const template = `${route.root ? '' : '/v1'}${route.path}`;
      if (!template.includes('{')) {
        await call('GET', template);
        continue;
      }
      // `{id}` (and other ids): the first item of the list route above it, when it has one.
      const listPath = template.slice(0, template.lastIndexOf('/{'));
      const filled = listPath.replace(/\{(\w+)\}/g, (_m, p: string) => byParam[p] ?? '');
      const listRoute = routeFor('GET', filled);
      let last = template.match(/\{(\w+)\}$/)?.[1];
      let id = last ? byParam[last] : undefined;
      if (listRoute && !template.endsWith('/limits')) {
        const list = await call('GET', filled);
        id = list?.data?.[0]?.id ?? list?.data?.[0]?.sessionId ?? id;
      }
      if (template.endsWith('/limits')) id = ids.projectScope;
      if (!id) continue; // nothing of that kind exists (live sessions: none without a broker)
      const path = template.replace(/\{(\w+)\}(?=\/limits$)/, id).replace(/\{(\w+)\}$/, id).replace(/\{(\w+)\}/g, (_m, p: string) => byParam[p] ?? '');
      last = undefined;
      await call('GET', path);
    }
  });

  it('validated every answer, and reached every GET route and the writes of both seeds', () => {
    expect(problems).toEqual([]);
    const gets = routes.filter((r) => r.method === 'get' && r.contentType !== 'text/event-stream').map((r) => `get ${r.root ? '' : '/v1'}${r.path}`);
    const missed = gets.filter((g) => !covered.has(g) && !g.startsWith('get /v1/sessions/'));
    expect(missed).toEqual([]);
    expect(covered.size).toBeGreaterThan(90);
  });
});
