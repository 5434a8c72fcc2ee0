/**
 * maxWorkspaces and maxUsers hold under parallel requests: on one sidecar (memory and Redis), and across two
 * sidecars sharing one Redis, where only the store's optimistic concurrency keeps them honest.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryPolicyStore } from '../authz-sidecar/store/memory-policy-store.ts';
import { RedisPolicyStore, createRedisClient } from '../authz-sidecar/store/redis-policy-store.ts';
import { startRedis, uniquePrefix, type RedisHandle } from './helpers/redis-server.ts';
import { startSidecar, type TestSidecar } from './helpers/sidecar.ts';

async function race(sidecars: TestSidecar[], count: number, request: (s: TestSidecar, i: number) => Promise<{ status: number; body: any }>) {
  const results = await Promise.all(Array.from({ length: count }, (_, i) => request(sidecars[i % sidecars.length]!, i)));
  return {
    /** The newest revision any accepted write reported. */
    revision: Math.max(0, ...results.filter((r) => r.status === 201).map((r) => r.body.revision as number)),
    created: results.filter((r) => r.status === 201).length,
    refused: results.filter((r) => r.status === 409 && r.body.error.code === 'LIMIT_EXCEEDED').length,
    other: results.filter((r) => r.status !== 201 && !(r.status === 409 && r.body.error.code === 'LIMIT_EXCEEDED')),
  };
}

async function checkLimits(sidecars: TestSidecar[], label: string) {
  const s = sidecars[0]!;
  const tenant = await s.ok('POST', '/v1/tenants', { name: `Limits ${label}`, slug: `limits-${label}`, maxWorkspaces: 5, maxUsers: 3 });

  const ws = await race(sidecars, 30, (x, i) => x.api('POST', '/v1/workspaces', { tenantId: tenant.id, name: `WS ${i}` }));
  expect(ws.other).toEqual([]);
  expect(ws.created).toBe(5);
  expect(ws.refused).toBe(25);
  // Every sidecar, once it has applied the newest accepted write, must list exactly the limit: a replica that
  // saw a sixth workspace (or missed one) would show here.
  await expectOnEverySidecar(sidecars, ws.revision, `/v1/workspaces?tenantId=${tenant.id}`, 5, tenant.scopeId);

  const users = await race(sidecars, 20, (x, i) =>
    x.api('POST', '/v1/users', { kindeId: `kp_${label}_${i}`, email: `u${i}@${label}.example`, defaultTenantId: tenant.id }),
  );
  expect(users.other).toEqual([]);
  expect(users.created).toBe(3);
  expect(users.refused).toBe(17);
  await expectOnEverySidecar(sidecars, users.revision, `/v1/users?defaultTenantId=${tenant.id}`, 3, tenant.scopeId);
}

async function expectOnEverySidecar(sidecars: TestSidecar[], revision: number, listPath: string, count: number, scopeId: string) {
  for (const x of sidecars) {
    // Wait (bounded, NOT_FRESH_ENOUGH otherwise) until this sidecar has applied `revision`.
    await x.ok('POST', '/v1/evaluate', { actor: { subjectId: 'subject_none', subjectType: 'user' }, scopeId, action: 'read', resource: { resourceType: 'x' }, consistency: { atLeastAsFresh: revision } });
    const listed = await x.ok('GET', listPath);
    expect(listed.revision).toBeGreaterThanOrEqual(revision);
    expect(listed.data).toHaveLength(count);
  }
}

describe('tenant limits under concurrency', () => {
  it('hold on one sidecar with the in-memory store', async () => {
    const s = await startSidecar(new MemoryPolicyStore());
    try {
      await checkLimits([s], 'memory');
    } finally {
      await s.close();
    }
  });

  describe('on Redis', () => {
    let redis: RedisHandle;
    beforeAll(async () => {
      redis = await startRedis();
    });
    afterAll(async () => {
      await redis?.stop();
    });

    it('hold on one sidecar', async () => {
      const s = await startSidecar(new RedisPolicyStore({ redis: createRedisClient(redis.url), prefix: uniquePrefix('limits1') }));
      try {
        await checkLimits([s], 'redis-one');
      } finally {
        await s.close();
      }
    });

    it('hold across two sidecars sharing one Redis', async () => {
      const prefix = uniquePrefix('limits2');
      const a = await startSidecar(new RedisPolicyStore({ redis: createRedisClient(redis.url), prefix }));
      const b = await startSidecar(new RedisPolicyStore({ redis: createRedisClient(redis.url), prefix }));
      try {
        await checkLimits([a, b], 'redis-two');
      } finally {
        await a.close();
        await b.close();
      }
    });
  });
});
