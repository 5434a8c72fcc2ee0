import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisPolicyStore, createRedisClient } from '../authz-sidecar/store/redis-policy-store.ts';
import type { ChangeEvent, Commit } from '../authz-sidecar/store/policy-store.ts';
import { ScopeGateError } from '../shared/errors.ts';
import { startRedis, uniquePrefix, type RedisHandle } from './helpers/redis-server.ts';
import { policyStoreContract, role, tenant } from './store-contract.ts';

const AUDIT = { principal: 'admin', action: 'test', at: '2025-01-01T00:00:00.000Z', tenantIds: [], before: [], after: [] };
const put = (n: number, expect: Record<string, number> = {}): Commit => ({ expect, puts: [tenant(n)], deletes: [], audit: AUDIT });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('RedisPolicyStore', () => {
  let redis: RedisHandle;
  beforeAll(async () => {
    redis = await startRedis({ appendonly: true, appendfsync: 'always' });
  });
  afterAll(async () => {
    await redis?.stop();
  });

  policyStoreContract('contract', async () => {
    const prefix = uniquePrefix('contract');
    const store = new RedisPolicyStore({ redis: createRedisClient(redis.url), prefix });
    return {
      store,
      sibling: () => new RedisPolicyStore({ redis: createRedisClient(redis.url), prefix }),
      done: () => store.close(),
    };
  });

  it("answers 'gap' when change events were trimmed", async () => {
    const prefix = uniquePrefix('gap');
    const store = new RedisPolicyStore({ redis: createRedisClient(redis.url), prefix });
    const raw = new Redis(redis.url);
    try {
      for (let i = 1; i <= 4; i++) await store.commit(put(i));
      await raw.xtrim(`${prefix}changes`, 'MINID', '3-0');
      expect(await store.changesSince(0)).toBe('gap');
      expect(await store.changesSince(1)).toBe('gap');
      expect(((await store.changesSince(2)) as ChangeEvent[]).map((e) => e.seq)).toEqual([3, 4]);
      expect(await store.changesSince(4)).toEqual([]);
    } finally {
      raw.disconnect();
      await store.close();
    }
  });

  it('rejects with STORE_UNAVAILABLE after close', async () => {
    const store = new RedisPolicyStore({ redis: createRedisClient(redis.url), prefix: uniquePrefix('closed') });
    await store.ping();
    await store.close();
    await expect(store.ping()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', status: 503 });
    await expect(store.commit(put(1))).rejects.toBeInstanceOf(ScopeGateError);
  });
});

describe('RedisPolicyStore across a Redis outage', () => {
  let redis: RedisHandle;
  beforeAll(async () => {
    redis = await startRedis({ appendonly: true, appendfsync: 'always' });
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('fails fast with STORE_UNAVAILABLE while Redis is down, then recovers with the same client', async () => {
    const prefix = uniquePrefix('outage');
    const store = new RedisPolicyStore({ redis: createRedisClient(redis.url), prefix });
    const seen: number[] = [];
    const stop = store.watch((e) => seen.push(e.seq));
    try {
      await store.ping();
      expect(await store.commit(put(1))).toEqual({ ok: true, seq: 1 });
      expect(await store.commit({ expect: { tenant_t1: 1 }, puts: [role(1, 1)], deletes: [], audit: AUDIT })).toEqual({ ok: true, seq: 2 });

      await redis.kill();

      for (const op of [() => store.commit(put(2)), () => store.ping(), () => store.snapshot(), () => store.changesSince(0), () => store.audit({ limit: 5 })]) {
        const started = Date.now();
        const err = await op().then(
          () => null,
          (e: unknown) => e,
        );
        expect(Date.now() - started).toBeLessThan(5000);
        expect(err).toBeInstanceOf(ScopeGateError);
        expect(err).toMatchObject({ code: 'STORE_UNAVAILABLE', status: 503 });
      }

      await redis.restart();

      // Same store, same client: commits work again once it has reconnected (at most ~1 s of backoff).
      const deadline = Date.now() + 10_000;
      let res: Awaited<ReturnType<typeof store.commit>> | null = null;
      while (!res) {
        try {
          res = await store.commit(put(3, { tenant_t1: 2 }));
        } catch (e) {
          expect(e).toMatchObject({ code: 'STORE_UNAVAILABLE' });
          if (Date.now() > deadline) throw e;
          await sleep(100);
        }
      }
      expect(res).toEqual({ ok: true, seq: 3 });

      // What was committed before the kill survived (appendfsync always); the failed commit left nothing.
      const snap = await store.snapshot();
      expect(snap.seq).toBe(3);
      expect(snap.records.map((r) => r.id).sort()).toEqual(['role_t1r1', 'tenant_t1', 'tenant_t3']);
      expect(snap.partitions).toEqual({ tenant_t1: 2, tenant_t3: 3 });
      expect((await store.audit({ limit: 10 })).map((e) => e.seq)).toEqual([3, 2, 1]);

      // The watcher survived the outage and sees the new commit.
      const waitUntil = Date.now() + 5000;
      while (!seen.includes(3) && Date.now() < waitUntil) await sleep(50);
      expect(seen).toEqual([1, 2, 3]);
    } finally {
      stop();
      await store.close();
    }
  });
});
