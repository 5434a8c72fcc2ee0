/**
 * API details a newcomer trips over (issue 16), on both stores: the tenant implied by the parent, 405 with
 * Allow, a /v1 hint for unprefixed paths, and token issuance in the audit log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryPolicyStore } from '../authz-sidecar/store/memory-policy-store.ts';
import { RedisPolicyStore, createRedisClient } from '../authz-sidecar/store/redis-policy-store.ts';
import { startRedis, uniquePrefix, type RedisHandle } from './helpers/redis-server.ts';
import { startSidecar, type TestSidecar } from './helpers/sidecar.ts';

const stores = {
  memory: async () => ({ store: new MemoryPolicyStore(), done: async () => {} }),
  redis: async () => {
    const redis: RedisHandle = await startRedis();
    return { store: new RedisPolicyStore({ redis: createRedisClient(redis.url), prefix: uniquePrefix('firsthour') }), done: () => redis.stop() };
  },
};

for (const [name, makeStore] of Object.entries(stores)) {
  describe(`first-hour API (${name} store)`, () => {
    let s: TestSidecar;
    let done: () => Promise<void>;
    beforeAll(async () => {
      const made = await makeStore();
      done = made.done;
      s = await startSidecar(made.store);
    });
    afterAll(async () => {
      await s?.close();
      await done?.();
    });

    it('creates projects and environments with the tenant implied by their parent; a disagreeing tenantId is a 422', async () => {
      const t = await s.ok('POST', '/v1/tenants', { name: 'Acme', slug: 'acme' });
      const other = await s.ok('POST', '/v1/tenants', { name: 'Other', slug: 'other' });
      const ws = await s.ok('POST', '/v1/workspaces', { tenantId: t.id, name: 'Eng' });
      const p = await s.ok('POST', '/v1/projects', { workspaceId: ws.id, name: 'API' });
      expect(p.tenantId).toBe(t.id);
      const env = await s.ok('POST', '/v1/environments', { projectId: p.id, name: 'Prod' });
      expect(env.tenantId).toBe(t.id);
      const before = await s.ok('GET', `/v1/projects?tenantId=${t.id}`);

      const wrongProject = await s.api('POST', '/v1/projects', { tenantId: other.id, workspaceId: ws.id, name: 'X' });
      expect(wrongProject.status).toBe(422);
      expect(wrongProject.body.error.code).toBe('CROSS_TENANT');
      const wrongEnv = await s.api('POST', '/v1/environments', { tenantId: other.id, projectId: p.id, name: 'X' });
      expect(wrongEnv.status).toBe(422);
      expect(wrongEnv.body.error.code).toBe('CROSS_TENANT');
      const missing = await s.api('POST', '/v1/projects', { workspaceId: 'workspace_nope', name: 'X' });
      expect(missing.status).toBe(422);
      expect(missing.body.error.code).toBe('INVALID_REFERENCE');
      expect((await s.ok('GET', `/v1/projects?tenantId=${t.id}`)).data).toHaveLength(before.data.length);
    });

    it('answers 405 with Allow for a method the path does not have, and hints at /v1 for unprefixed paths', async () => {
      const put = await fetch(`${s.url}/v1/tenants`, { method: 'PUT', headers: { authorization: `Bearer ${s.adminToken}`, 'content-type': 'application/json' }, body: '{}' });
      expect(put.status).toBe(405);
      expect(put.headers.get('allow')).toBe('GET, HEAD, POST');
      expect(((await put.json()) as { error: { code: string } }).error.code).toBe('METHOD_NOT_ALLOWED');
      const putOne = await s.api('PUT', '/v1/tenants/tenant_x', {});
      expect(putOne.status).toBe(405);
      expect(putOne.body.error.details[0].allow).toEqual(['DELETE', 'GET', 'HEAD', 'PATCH']);

      const bare = await s.api('GET', '/tenants');
      expect(bare.status).toBe(404);
      expect(bare.body.error.code).toBe('ROUTE_NOT_FOUND');
      expect(bare.body.error.message).toContain('Did you mean /v1/tenants?');
      // A path the route table knows, with a method it has, that finds nothing: 404, not 405.
      const missingFile = await fetch(`${s.url}/console/no-such-file.js`);
      expect(missingFile.status).toBe(404);
      const nowhere = await s.api('GET', '/v1/nope');
      expect(nowhere.status).toBe(404);
      expect(nowhere.body.error.message).not.toContain('Did you mean');
    });

    it('records token issuance in the audit log, without the token', async () => {
      const t = await s.ok('POST', '/v1/tenants', { name: 'Tok', slug: 'tok' });
      const ws = await s.ok('POST', '/v1/workspaces', { tenantId: t.id, name: 'W' });
      const p = await s.ok('POST', '/v1/projects', { workspaceId: ws.id, name: 'P' });
      const base = `/v1/organizations/${t.id}/projects/${p.id}`;
      const actor = await s.ok('POST', `${base}/actors`, { name: 'dev-1' });
      const issued = await s.ok('POST', `${base}/actors/${actor.actorId}/tokens`, { ttlSeconds: 600 });
      const audit = await s.ok('GET', `/v1/audit?limit=500`);
      const entry = audit.data.find((e: { action: string }) => e.action === 'actor_token.issue');
      expect(entry).toBeDefined();
      expect(entry.principal).toBe('admin');
      expect(entry.tenantIds).toEqual([t.id]);
      expect(entry.after[0]).toMatchObject({ kind: 'actorToken', actorId: actor.actorId, expiresAt: issued.expiresAt, ttlSeconds: 600 });
      expect(JSON.stringify(audit)).not.toContain(issued.token);
    });
  });
}
