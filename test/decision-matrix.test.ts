/**
 * The rules of SPEC §3, one row each: define/merge boundaries, inheritance, overrides (nearest wins, a deeper
 * `enabled` re-enables, role overrides beat permission overrides at one scope), pattern matching, custom
 * scope types and refusals (422/409), batches all-or-nothing, cascades.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSidecar, type TestSidecar } from './helpers/sidecar.ts';

let s: TestSidecar;
const id: Record<string, string> = {};

const decide = async (subject: string, scope: string, action: string, resourceType: string, resourceId?: string) =>
  (
    await s.ok('POST', '/v1/evaluate', {
      actor: { subjectId: subject, subjectType: 'user' },
      scopeId: scope,
      action,
      resource: resourceId === undefined ? { resourceType } : { resourceType, resourceId },
    })
  ).decision as 'ALLOWED' | 'DENIED';

async function user(name: string, scope: string, roleId: string) {
  const u = await s.ok('POST', '/v1/users', { kindeId: `kp_${name}`, email: `${name}@m.example`, defaultTenantId: id.tenant });
  const m = await s.ok('POST', '/v1/memberships', { subjectId: u.subjectId, scopeId: scope });
  await s.ok('POST', '/v1/role-assignments', { roleId, membershipId: m.id });
  return u.subjectId as string;
}

beforeAll(async () => {
  s = await startSidecar();
  const t = await s.ok('POST', '/v1/tenants', { name: 'Matrix', slug: 'matrix' });
  id.tenant = t.id;
  id.tenantScope = t.scopeId;
  const ws = await s.ok('POST', '/v1/workspaces', { tenantId: t.id, name: 'W' });
  id.wsScope = ws.scopeId;
  const p = await s.ok('POST', '/v1/projects', { tenantId: t.id, workspaceId: ws.id, name: 'P' });
  id.project = p.id;
  id.projectScope = p.scopeId;
  const env = await s.ok('POST', '/v1/environments', { tenantId: t.id, projectId: p.id, name: 'Prod' });
  id.envScope = env.scopeId;
  await s.ok('POST', '/v1/scope-types/batch', [
    { id: 'type_site', name: 'Site', config: { permissionMode: 'merge' } },
    { id: 'type_crew2', name: 'Crew', config: { permissionMode: 'merge' } },
    { id: 'type_enclave', name: 'Enclave', config: { permissionMode: 'define' } },
  ]);
  await s.ok('POST', '/v1/scope-type-hierarchy/batch', [
    { parentTypeId: 'type_environment', childTypeId: 'type_site' },
    { parentTypeId: 'type_site', childTypeId: 'type_crew2' },
    { parentTypeId: 'type_project', childTypeId: 'type_enclave' },
    { parentTypeId: 'type_enclave', childTypeId: 'type_site' },
  ]);
  id.site = (await s.ok('POST', '/v1/scopes', { parentScopeId: id.envScope, typeId: 'type_site', slug: 'site', name: 'Site' })).id;
  id.crew = (await s.ok('POST', '/v1/scopes', { parentScopeId: id.site, typeId: 'type_crew2', slug: 'crew', name: 'Crew' })).id;
  id.enclave = (await s.ok('POST', '/v1/scopes', { parentScopeId: id.projectScope, typeId: 'type_enclave', slug: 'enclave', name: 'Enclave' })).id;
  id.enclaveSite = (await s.ok('POST', '/v1/scopes', { parentScopeId: id.enclave, typeId: 'type_site', slug: 'inner', name: 'Inner' })).id;

  const roles = await s.ok('POST', '/v1/roles/batch', [
    { name: 'Operator', scopeId: id.projectScope },
    { name: 'Guard', scopeId: id.enclave },
  ]);
  id.operator = roles.data[0].id;
  id.guard = roles.data[1].id;
  const perms = await s.ok('POST', '/v1/permissions/batch', [
    { scopeId: id.projectScope, action: 'operate', resourceType: 'machine', resourcePattern: '*' },
    { scopeId: id.projectScope, action: 'read', resourceType: 'doc', resourcePattern: 'doc-*' },
    { scopeId: id.projectScope, action: 'publish', resourceType: 'topic', resourcePattern: 'app/sensors/+/temp' },
    { scopeId: id.projectScope, action: 'subscribe', resourceType: 'topic', resourcePattern: 'app/sensors/#' },
    { scopeId: id.enclave, action: 'guard', resourceType: '*', resourcePattern: '*' },
  ]);
  [id.operate, id.readDoc, id.pub, id.sub, id.guardPerm] = perms.data.map((p: { id: string }) => p.id);
  await s.ok('POST', '/v1/role-permissions/batch', [
    { roleId: id.operator, permissionId: id.operate },
    { roleId: id.operator, permissionId: id.readDoc },
    { roleId: id.operator, permissionId: id.pub },
    { roleId: id.operator, permissionId: id.sub },
    { roleId: id.guard, permissionId: id.guardPerm },
  ]);
  id.olga = await user('olga', id.projectScope!, id.operator!);
});
afterAll(() => s?.close());

describe('inheritance and boundaries', () => {
  it('merge scopes inherit memberships, roles and permissions from above', async () => {
    for (const scope of [id.projectScope, id.envScope, id.site, id.crew]) expect(await decide(id.olga!, scope!, 'operate', 'machine')).toBe('ALLOWED');
    expect(await decide(id.olga!, id.wsScope!, 'operate', 'machine')).toBe('DENIED');
  });

  it('a define scope inherits nothing from above', async () => {
    expect(await decide(id.olga!, id.enclave!, 'operate', 'machine')).toBe('DENIED');
    expect(await decide(id.olga!, id.enclaveSite!, 'operate', 'machine')).toBe('DENIED');
  });

  it('roles defined inside a define scope work below it, and a role from above does not cross it', async () => {
    const gina = await user('gina', id.enclave!, id.guard!);
    expect(await decide(gina, id.enclaveSite!, 'guard', 'anything')).toBe('ALLOWED');
    expect(await decide(gina, id.projectScope!, 'guard', 'anything')).toBe('DENIED');
    // A project role assigned on a membership inside the enclave is allowed to exist but is not visible there.
    const m = await s.ok('POST', '/v1/memberships', { subjectId: gina, scopeId: id.enclaveSite });
    await s.ok('POST', '/v1/role-assignments', { roleId: id.operator, membershipId: m.id });
    expect(await decide(gina, id.enclaveSite!, 'operate', 'machine')).toBe('DENIED');
    const trace = await s.ok('POST', '/v1/evaluate?explain=true', { actor: { subjectId: gina, subjectType: 'user' }, scopeId: id.enclaveSite, action: 'operate', resource: { resourceType: 'machine' } });
    expect(trace.trace).toContainEqual(expect.objectContaining({ roleId: id.operator, reason: 'role_not_visible' }));
  });

  it('a role can only be assigned at or below the scope that defines it', async () => {
    const u = await s.ok('POST', '/v1/users', { kindeId: 'kp_wanda', email: 'wanda@m.example' });
    const m = await s.ok('POST', '/v1/memberships', { subjectId: u.subjectId, scopeId: id.wsScope });
    const r = await s.api('POST', '/v1/role-assignments', { roleId: id.operator, membershipId: m.id });
    expect(r.status).toBe(422);
    expect(r.body.error.code).toBe('RULE_VIOLATION');
  });
});

describe('patterns', () => {
  it('glob resource patterns and whole-type requests', async () => {
    expect(await decide(id.olga!, id.envScope!, 'read', 'doc', 'doc-42')).toBe('ALLOWED');
    expect(await decide(id.olga!, id.envScope!, 'read', 'doc', 'secret-1')).toBe('DENIED');
    expect(await decide(id.olga!, id.envScope!, 'read', 'doc')).toBe('DENIED');
  });

  it('topic patterns use MQTT filter matching; a subscription must be covered entirely', async () => {
    expect(await decide(id.olga!, id.envScope!, 'publish', 'topic', 'app/sensors/1/temp')).toBe('ALLOWED');
    expect(await decide(id.olga!, id.envScope!, 'publish', 'topic', 'app/sensors/1/humidity')).toBe('DENIED');
    expect(await decide(id.olga!, id.envScope!, 'publish', 'topic', 'app/sensors/1/2/temp')).toBe('DENIED');
    expect(await decide(id.olga!, id.envScope!, 'subscribe', 'topic', 'app/sensors/+/temp')).toBe('ALLOWED');
    expect(await decide(id.olga!, id.envScope!, 'subscribe', 'topic', 'app/#')).toBe('DENIED');
    expect(await decide(id.olga!, id.envScope!, 'subscribe', 'topic', 'app/+/x')).toBe('DENIED');
  });
});

describe('overrides', () => {
  it('disable at a scope, re-enable deeper: the override nearest the target wins', async () => {
    await s.ok('POST', '/v1/scope-overrides/permissions', { childScopeId: id.envScope, permissionId: id.operate, state: 'disabled' });
    await s.ok('POST', '/v1/scope-overrides/permissions', { childScopeId: id.site, permissionId: id.operate, state: 'enabled' });
    expect(await decide(id.olga!, id.projectScope!, 'operate', 'machine')).toBe('ALLOWED');
    expect(await decide(id.olga!, id.envScope!, 'operate', 'machine')).toBe('DENIED');
    expect(await decide(id.olga!, id.site!, 'operate', 'machine')).toBe('ALLOWED');
    expect(await decide(id.olga!, id.crew!, 'operate', 'machine')).toBe('ALLOWED');
  });

  it('at one scope, a role-permission override beats a permission override', async () => {
    await s.ok('POST', '/v1/scope-overrides/permissions', { childScopeId: id.crew, permissionId: id.operate, state: 'disabled' });
    expect(await decide(id.olga!, id.crew!, 'operate', 'machine')).toBe('DENIED');
    await s.ok('POST', '/v1/scope-overrides/role-permissions', { childScopeId: id.crew, roleId: id.operator, permissionId: id.operate, state: 'enabled' });
    expect(await decide(id.olga!, id.crew!, 'operate', 'machine')).toBe('ALLOWED');
  });

  it('posting an override again changes its state instead of adding a second one', async () => {
    const first = await s.ok('POST', '/v1/scope-overrides/permissions', { childScopeId: id.site, permissionId: id.readDoc, state: 'disabled' });
    const second = await s.ok('POST', '/v1/scope-overrides/permissions', { childScopeId: id.site, permissionId: id.readDoc, state: 'enabled' });
    expect(second.id).toBe(first.id);
    expect(await decide(id.olga!, id.site!, 'read', 'doc', 'doc-1')).toBe('ALLOWED');
  });

  it('an override above the permission scope is refused', async () => {
    const r = await s.api('POST', '/v1/scope-overrides/permissions', { childScopeId: id.wsScope, permissionId: id.operate, state: 'disabled' });
    expect(r.status).toBe(422);
  });
});

describe('refusals, batches, cascades', () => {
  it('a scope type edge that does not exist refuses the scope (422) and changes nothing', async () => {
    const before = await s.ok('GET', `/v1/scopes?parentId=${id.tenantScope}`);
    const r = await s.api('POST', '/v1/scopes', { parentScopeId: id.tenantScope, typeId: 'type_crew2', slug: 'nope', name: 'Nope' });
    expect(r.status).toBe(422);
    expect(r.body.error.code).toBe('HIERARCHY_VIOLATION');
    expect((await s.ok('GET', `/v1/scopes?parentId=${id.tenantScope}`)).data).toEqual(before.data);
  });

  it('a batch with one bad item creates nothing', async () => {
    const before = await s.ok('GET', `/v1/roles?scopeId=${id.projectScope}`);
    const r = await s.api('POST', '/v1/roles/batch', [
      { name: 'Fine', scopeId: id.projectScope },
      { name: 'Broken', scopeId: 'scope_does_not_exist' },
    ]);
    expect(r.status).toBe(422);
    expect(r.body.error.details[0].path).toBe('body.1.scopeId');
    expect((await s.ok('GET', `/v1/roles?scopeId=${id.projectScope}`)).data).toEqual(before.data);
  });

  it('deleting something still referenced is 409; with cascade it goes with its dependents', async () => {
    const roles = await s.ok('POST', '/v1/roles/batch', [{ name: 'Temp', scopeId: id.projectScope }]);
    const temp = roles.data[0].id;
    await s.ok('POST', '/v1/role-permissions/batch', [{ roleId: temp, permissionId: id.operate }]);
    const dan = await user('dan', id.projectScope!, temp);
    expect(await decide(dan, id.projectScope!, 'operate', 'machine')).toBe('ALLOWED');
    const refused = await s.api('DELETE', `/v1/roles/${temp}`);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('STILL_REFERENCED');
    expect(await decide(dan, id.projectScope!, 'operate', 'machine')).toBe('ALLOWED');
    const deleted = await s.ok('DELETE', `/v1/roles/${temp}?cascade=true`);
    expect(deleted.deleted.map((d: { kind: string }) => d.kind).sort()).toEqual(['role', 'roleAssignment', 'rolePermission']);
    expect(await decide(dan, id.projectScope!, 'operate', 'machine')).toBe('DENIED');
    expect((await s.api('GET', `/v1/roles/${temp}`)).status).toBe(404);
  });

  it('deleting a whole tenant with cascade leaves no dangling reference', async () => {
    const t = await s.ok('POST', '/v1/tenants', { name: 'Doomed', slug: 'doomed' });
    const ws = await s.ok('POST', '/v1/workspaces', { tenantId: t.id, name: 'W' });
    const p = await s.ok('POST', '/v1/projects', { tenantId: t.id, workspaceId: ws.id, name: 'P' });
    const r = await s.ok('POST', '/v1/roles/batch', [{ name: 'R', scopeId: p.scopeId }]);
    const u = await s.ok('POST', '/v1/users', { kindeId: 'kp_doomed', email: 'd@doomed.example', defaultTenantId: t.id });
    const m = await s.ok('POST', '/v1/memberships', { subjectId: u.subjectId, scopeId: p.scopeId });
    await s.ok('POST', '/v1/role-assignments', { roleId: r.data[0].id, membershipId: m.id });
    expect((await s.api('DELETE', `/v1/tenants/${t.id}`)).status).toBe(409);
    await s.ok('DELETE', `/v1/tenants/${t.id}?cascade=true`);
    for (const path of [`/v1/tenants/${t.id}`, `/v1/workspaces/${ws.id}`, `/v1/projects/${p.id}`, `/v1/scopes/${p.scopeId}`, `/v1/memberships/${m.id}`]) {
      expect((await s.api('GET', path)).status).toBe(404);
    }
    // Users belong to their tenant and go with it (README, security: users are per tenant).
    expect((await s.api('GET', `/v1/users/${u.id}`)).status).toBe(404);
  });

  it('answers clear errors for bad input: 400 malformed, 401 without token, 404 unknown route', async () => {
    const bad = await s.api('POST', '/v1/tenants', '{not json');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('INVALID_JSON');
    const wrongType = await s.api('POST', '/v1/tenants', { name: 42 });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.error).toMatchObject({ code: 'VALIDATION_FAILED', details: [expect.objectContaining({ path: 'body.name' })] });
    const proto = await s.api('POST', '/v1/tenants', '{"name":"x","__proto__":{"admin":true}}');
    expect(proto.status).toBe(400);
    expect((await s.api('GET', '/v1/tenants', undefined, 'wrong-token')).status).toBe(401);
    expect((await s.api('GET', '/v1/nope')).body.error.code).toBe('ROUTE_NOT_FOUND');
  });
});
