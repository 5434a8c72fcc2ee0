/**
 * Issue 11, items 6, 7 and 12: attacks on the admin API by a tenant's own API keys, each performed as
 * described and shown to fail, over HTTP against real sidecars.
 *  6. a key for one access scope reading the whole tenant's audit log (siblings' actors, users' e-mail);
 *  7. a tenant key lifting its own plan limits (maxUsers, maxWorkspaces, planKey);
 * 12. tenant B learning through 409 whether A's people exist, or registering them first (on both stores).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryPolicyStore } from '../authz-sidecar/store/memory-policy-store.ts';
import type { PolicyStore } from '../authz-sidecar/store/policy-store.ts';
import { RedisPolicyStore, createRedisClient } from '../authz-sidecar/store/redis-policy-store.ts';
import { startRedis, uniquePrefix, type RedisHandle } from './helpers/redis-server.ts';
import { startSidecar, type TestSidecar } from './helpers/sidecar.ts';

async function onboard(s: TestSidecar, slug: string) {
  const tenant = await s.ok('POST', '/v1/tenants', { name: `Tenant ${slug}`, slug, maxUsers: 5, maxWorkspaces: 2, planKey: 'starter' });
  const ws = await s.ok('POST', '/v1/workspaces', { tenantId: tenant.id, name: 'Main' });
  const project = await s.ok('POST', '/v1/projects', { tenantId: tenant.id, workspaceId: ws.id, name: 'Messaging' });
  const base = `/v1/organizations/${tenant.id}/projects/${project.id}`;
  const tenantKey = await s.ok('POST', '/v1/api-keys', { scopeId: tenant.scopeId, name: `${slug} admin` });
  return { tenant, project, base, tenantKey: tenantKey.key as string };
}

describe('6: an access-scope key reads only its subtree of the audit log', () => {
  let s: TestSidecar;
  beforeAll(async () => {
    s = await startSidecar();
  });
  afterAll(async () => s?.close());

  it("shows neither sibling scopes' records nor the tenant's users", async () => {
    const a = await onboard(s, 'audit-a');
    const s1 = await s.ok('POST', `${a.base}/scopes`, { slug: 'customer-one', name: 'Customer One' });
    const s2 = await s.ok('POST', `${a.base}/scopes`, { slug: 'customer-two', name: 'Customer Two' });
    const key1 = (await s.ok('POST', '/v1/api-keys', { scopeId: s1.accessScopeId, name: 'customer one' })).key as string;
    const mine = await s.ok('POST', `${a.base}/actors`, { name: 'sensor-of-one', accessScopeId: s1.accessScopeId });
    const sibling = await s.ok('POST', `${a.base}/actors`, { name: 'sensor-of-two', accessScopeId: s2.accessScopeId });
    await s.ok('PATCH', `${a.base}/actors/${sibling.actorId}`, { name: 'renamed-sensor-of-two' });
    const user = await s.ok('POST', '/v1/users', { kindeId: 'kp_secret_person', email: 'secret.person@audit-a.example', defaultTenantId: a.tenant.id });
    // A cascade that deletes both scopes' actors at once: the key may see its own part of it, not the rest.
    await s.ok('DELETE', `/v1/scopes/${s2.accessScopeId}?cascade=true`);

    const asRoot = JSON.stringify(await s.ok('GET', '/v1/audit?limit=1000'));
    for (const secret of [sibling.actorId, 'secret.person@audit-a.example', user.id, s2.accessScopeId]) expect(asRoot).toContain(secret);

    const page = await s.ok('GET', '/v1/audit?limit=1000', undefined, key1);
    const text = JSON.stringify(page);
    expect(text).toContain(mine.actorId);
    for (const secret of [sibling.actorId, 'sensor-of-two', 'secret.person@audit-a.example', 'kp_secret_person', user.id, s2.accessScopeId, a.tenant.id + '"kind"']) {
      expect(text, `the key's audit page shows ${secret}`).not.toContain(secret);
    }
    // Every record shown is inside the key's scope.
    for (const e of page.data) for (const r of [...e.before, ...e.after]) expect([r.id, r.accessScopeId, r.scopeId]).toContain(s1.accessScopeId);
    // Asking for another tenant's entries changes nothing for a key.
    expect(JSON.stringify(await s.ok('GET', `/v1/audit?limit=1000&tenantId=${a.tenant.id}`, undefined, key1))).not.toContain(sibling.actorId);

    // Pages: small pages walk the same entries, newest first, without repeats.
    const seen: number[] = [];
    let before: number | null = null;
    do {
      const p: { data: { seq: number }[]; nextBefore: number | null } = await s.ok('GET', `/v1/audit?limit=1${before ? `&before=${before}` : ''}`, undefined, key1);
      seen.push(...p.data.map((e) => e.seq));
      before = p.nextBefore;
    } while (before !== null);
    expect(seen).toEqual(page.data.map((e: { seq: number }) => e.seq));

    // The tenant-wide key still sees its whole tenant, users included.
    expect(JSON.stringify(await s.ok('GET', '/v1/audit?limit=1000', undefined, a.tenantKey))).toContain('secret.person@audit-a.example');
  });
});

describe('7: plan limits are the operator’s', () => {
  let s: TestSidecar;
  let a: Awaited<ReturnType<typeof onboard>>;
  beforeAll(async () => {
    s = await startSidecar();
    a = await onboard(s, 'plan-a');
  });
  afterAll(async () => s?.close());

  it('a tenant key cannot lift its own maxUsers, maxWorkspaces or planKey', async () => {
    for (const change of [{ maxUsers: 100_000 }, { maxUsers: null }, { maxWorkspaces: 1000 }, { planKey: 'enterprise' }, { name: 'ok', maxUsers: 6 }, { limits: { maxSessions: 1_000_000 } }]) {
      const r = await s.api('PATCH', `/v1/tenants/${a.tenant.id}`, change, a.tenantKey);
      expect(r.status, JSON.stringify(change)).toBe(403);
      expect(r.body.error.code).toBe('FORBIDDEN');
    }
    const after = await s.ok('GET', `/v1/tenants/${a.tenant.id}`);
    expect(after).toMatchObject({ maxUsers: 5, maxWorkspaces: 2, planKey: 'starter', name: 'Tenant plan-a' });
    // Its own fields it still changes, and sending the limits unchanged is no change.
    expect((await s.ok('PATCH', `/v1/tenants/${a.tenant.id}`, { name: 'Renamed A', maxUsers: 5 }, a.tenantKey)).name).toBe('Renamed A');
    // The root token may.
    expect((await s.ok('PATCH', `/v1/tenants/${a.tenant.id}`, { maxUsers: 7 })).maxUsers).toBe(7);
  });

  it('only the root token can give a key the tenant.plan capability, and that key may change the plan', async () => {
    for (const body of [{ scopeId: a.tenant.scopeId, name: 'self-granted', capabilities: ['tenant.plan'] }]) {
      const r = await s.api('POST', '/v1/api-keys', body, a.tenantKey);
      expect(r.status).toBe(403);
      expect(r.body.error.code).toBe('FORBIDDEN');
    }
    const bad = await s.api('POST', '/v1/api-keys', { scopeId: a.tenant.scopeId, name: 'x', capabilities: ['root'] });
    expect(bad.status).toBe(400);
    const granted = await s.ok('POST', '/v1/api-keys', { scopeId: a.tenant.scopeId, name: 'billing', capabilities: ['tenant.plan'] });
    expect(granted.capabilities).toEqual(['tenant.plan']);
    expect((await s.ok('PATCH', `/v1/tenants/${a.tenant.id}`, { maxUsers: 9, planKey: 'pro' }, granted.key)).maxUsers).toBe(9);
    // A key with the capability still cannot pass it on.
    expect((await s.api('POST', '/v1/api-keys', { scopeId: a.tenant.scopeId, name: 'passed on', capabilities: ['tenant.plan'] }, granted.key)).status).toBe(403);
    // Nor reach another tenant's plan.
    const b = await onboard(s, 'plan-b');
    expect((await s.api('PATCH', `/v1/tenants/${b.tenant.id}`, { maxUsers: 1 }, granted.key)).status).toBe(403);
    expect((await s.ok('GET', `/v1/tenants/${b.tenant.id}`)).maxUsers).toBe(5);
  });
});

describe('12: users are per tenant: no existence oracle, no squatting', () => {
  let redis: RedisHandle;
  beforeAll(async () => {
    redis = await startRedis();
  }, 30_000);
  afterAll(async () => redis?.stop());

  const stores: Array<[string, () => PolicyStore]> = [
    ['memory', () => new MemoryPolicyStore()],
    ['redis', () => new RedisPolicyStore({ redis: createRedisClient(redis.url), prefix: uniquePrefix('users') })],
  ];
  for (const [name, make] of stores) {
    it(`on the ${name} store`, async () => {
      const s = await startSidecar(make());
      try {
        const a = await onboard(s, 'people-a');
        const b = await onboard(s, 'people-b');
        const jane = { kindeId: 'kp_jane123', email: 'jane@acme.com', firstName: 'Jane' };
        const janeA = await s.ok('POST', '/v1/users', { ...jane, defaultTenantId: a.tenant.id }, a.tenantKey);

        // Oracle: B's answers are the same whether or not the address exists in A.
        const known = await s.api('POST', '/v1/users', { ...jane, defaultTenantId: b.tenant.id }, b.tenantKey);
        const unknown = await s.api('POST', '/v1/users', { kindeId: 'kp_nobody', email: 'nobody@acme.com', defaultTenantId: b.tenant.id }, b.tenantKey);
        expect([known.status, unknown.status]).toEqual([201, 201]);
        const janeB = known.body;
        expect(janeB.id).not.toBe(janeA.id);
        expect(janeB.tenantId).toBe(b.tenant.id);
        for (const q of ['email=jane@acme.com', 'kindeId=kp_jane123']) {
          const list = await s.ok('GET', `/v1/users?${q}`, undefined, b.tenantKey);
          expect(list.data.map((u: { id: string }) => u.id)).toEqual([janeB.id]);
        }
        expect((await s.api('GET', `/v1/users/${janeA.id}`, undefined, b.tenantKey)).status).toBe(403);

        // Squatting: B registered the person first (above, and again here for a new one); A is not blocked.
        const bob = { kindeId: 'kp_bob', email: 'bob@acme.com' };
        await s.ok('POST', '/v1/users', { ...bob, defaultTenantId: b.tenant.id }, b.tenantKey);
        const bobA = await s.api('POST', '/v1/users', { ...bob, defaultTenantId: a.tenant.id }, a.tenantKey);
        expect(bobA.status).toBe(201);
        expect((await s.api('GET', `/v1/users/${bobA.body.id}`, undefined, a.tenantKey)).status).toBe(200);
        // Within one tenant a person is still unique.
        const twice = await s.api('POST', '/v1/users', { ...bob, defaultTenantId: a.tenant.id }, a.tenantKey);
        expect([twice.status, twice.body.error.code]).toEqual([409, 'ALREADY_EXISTS']);
        expect((await s.api('PATCH', `/v1/users/${bobA.body.id}`, { email: 'JANE@acme.com' }, a.tenantKey)).status).toBe(409);

        // B cannot pull A's user into its scopes, nor move it; even the root keeps a tenant's user in its tenant.
        const link = await s.api('POST', '/v1/memberships', { subjectId: janeA.subjectId, scopeId: b.project.scopeId }, b.tenantKey);
        expect([link.status, link.body.error.code]).toEqual([403, 'FORBIDDEN']);
        const rootLink = await s.api('POST', '/v1/memberships', { subjectId: janeA.subjectId, scopeId: b.project.scopeId });
        expect([rootLink.status, rootLink.body.error.code]).toEqual([422, 'CROSS_TENANT']);
        expect((await s.api('PATCH', `/v1/users/${janeA.id}`, { defaultTenantId: b.tenant.id })).body.error.code).toBe('CROSS_TENANT');

        // The root's global identity (no tenant): only the root sees it and links it, into several tenants.
        const global = await s.ok('POST', '/v1/users', { kindeId: 'kp_consultant', email: 'consultant@example.com' });
        expect(global.tenantId).toBeNull();
        expect((await s.api('POST', '/v1/users', { kindeId: 'kp_x', email: 'x@example.com' }, b.tenantKey)).status).toBe(403);
        expect((await s.api('GET', `/v1/users/${global.id}`, undefined, b.tenantKey)).status).toBe(403);
        expect((await s.api('POST', '/v1/memberships', { subjectId: global.subjectId, scopeId: b.project.scopeId }, b.tenantKey)).status).toBe(403);
        await s.ok('POST', '/v1/memberships', { subjectId: global.subjectId, scopeId: a.project.scopeId });
        await s.ok('POST', '/v1/memberships', { subjectId: global.subjectId, scopeId: b.project.scopeId });

        // B's own person works as before: membership, role, evaluate.
        const m = await s.ok('POST', '/v1/memberships', { subjectId: janeB.subjectId, scopeId: b.project.scopeId }, b.tenantKey);
        const role = (await s.ok('POST', '/v1/roles/batch', [{ scopeId: b.project.scopeId, name: 'Reader' }], b.tenantKey)).data[0];
        const perm = (await s.ok('POST', '/v1/permissions/batch', [{ scopeId: b.project.scopeId, action: 'read', resourceType: 'doc' }], b.tenantKey)).data[0];
        await s.ok('POST', '/v1/role-permissions', { roleId: role.id, permissionId: perm.id }, b.tenantKey);
        await s.ok('POST', '/v1/role-assignments', { roleId: role.id, membershipId: m.id }, b.tenantKey);
        const ask = (subjectId: string) => ({ actor: { subjectId, subjectType: 'user' }, scopeId: b.project.scopeId, action: 'read', resource: { resourceType: 'doc' } });
        expect((await s.ok('POST', '/v1/evaluate', ask(janeB.subjectId), b.tenantKey)).decision).toBe('ALLOWED');
        expect((await s.api('POST', '/v1/evaluate', ask(janeA.subjectId), b.tenantKey)).status).toBe(403);
      } finally {
        await s.close();
      }
    });
  }
});
