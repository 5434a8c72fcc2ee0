/**
 * Redis mode with real processes: two sidecars and two brokers on one redis-server. Messages cross brokers
 * (Redis pub/sub), isolation holds across them, a write on one sidecar is enforced on the other broker,
 * and atLeastAsFresh reads own writes on either sidecar.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScopeGateClient } from '../client/index.ts';
import { connect, receivedBefore } from './helpers/mqtt.ts';
import { startBrokerProcess, startSidecarProcess } from './helpers/processes.ts';
import { startRedis, type RedisHandle } from './helpers/redis-server.ts';
import { createActor, createProject } from './helpers/system.ts';

const ADMIN = 'cluster-admin-token-0123456789';
const BROKER = 'cluster-broker-token-0123456789';
let redis: RedisHandle;
type Proc = { stop(): Promise<void>; url: string };
let sidecars: Proc[] = [];
let brokers: Array<Proc & { lines: unknown[] }> = [];

beforeAll(async () => {
  redis = await startRedis({ appendonly: true, appendfsync: 'always' });
  const env = { REDIS_URL: redis.url, AUTHZ_ADMIN_TOKEN: ADMIN, BROKER_TOKEN: BROKER, LOG_LEVEL: process.env.DEBUG_LOG ?? 'info' };
  sidecars = await Promise.all([startSidecarProcess(env), startSidecarProcess(env)]);
  brokers = await Promise.all(sidecars.map((s) => startBrokerProcess({ ...env, SIDECAR_URL: s.url })));
}, 60_000);
afterAll(async () => {
  await Promise.all([...brokers, ...sidecars].map((p) => p.stop()));
  await redis?.stop();
});

describe('two sidecars and two brokers on one Redis', () => {
  it('deliver each other’s messages, keep the isolation, and enforce each other’s writes', async () => {
    const sg1 = new ScopeGateClient({ baseUrl: sidecars[0]!.url, token: ADMIN });
    const sg2 = new ScopeGateClient({ baseUrl: sidecars[1]!.url, token: ADMIN });
    const { api, orgId, projectId } = await createProject(sg1, 'cluster');
    const acme = await api.scopes.create({ slug: 'acme-corp', name: 'Acme' });
    const globex = await api.scopes.create({ slug: 'globex', name: 'Globex' });
    const app = await api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
    const alice = await createActor(api, 'alice', acme.accessScopeId, [app.appId]);
    const alice2 = await createActor(api, 'alice-2', acme.accessScopeId, [app.appId]);
    const bob = await createActor(api, 'bob', globex.accessScopeId, [app.appId]);

    // Written on sidecar 1; sidecar 2 answers connects for it (own-write freshness through the change feed).
    const a = await connect(brokers[0]!.url, alice.actorId, alice.token);
    const a2 = await connect(brokers[1]!.url, alice2.actorId, alice2.token);
    const b = await connect(brokers[1]!.url, bob.actorId, bob.token);
    try {
      await a2.subscribe('my-app/#', 1);
      await b.subscribe('my-app/#', 1);
      await a.publish('my-app/chat', 'across brokers', { qos: 1 });
      expect(await a2.next((m) => m.payload === 'across brokers')).toMatchObject({ topic: 'my-app/chat' });
      // a2 and b are on the same broker, which hands a message to all its subscribers in one emit: a copy for b
      // would be ahead of b's sentinel.
      expect(await receivedBefore(b, b, 'my-app/sentinel')).toEqual([]);

      // A revocation written on sidecar 2 is enforced by broker 1 (fed by sidecar 1).
      const { revision } = await sg2.project(orgId, projectId).actors.update(alice.actorId, { disabled: true });
      await expect.poll(() => a.client.connected, { timeout: 2_000, interval: 20 }).toBe(false);
      // atLeastAsFresh: sidecar 1 has seen sidecar 2's write.
      const fresh = await fetch(`${sidecars[0]!.url}/v1/evaluate`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ actor: { subjectId: alice.subjectId, subjectType: 'actor' }, scopeId: acme.accessScopeId, action: 'read', resource: { resourceType: 'doc' }, consistency: { atLeastAsFresh: revision } }),
      });
      expect(fresh.status).toBe(200);
      expect((await fresh.json()).revision).toBeGreaterThanOrEqual(revision);
    } catch (err) {
      if (process.env.DEBUG_LOG) console.log(JSON.stringify(brokers.map((x) => x.lines.slice(-30)), null, 1));
      throw err;
    } finally {
      await Promise.all([a.end(), a2.end(), b.end()]);
    }
  });
});
