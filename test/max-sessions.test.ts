/**
 * `maxSessions` (issue 13): exact and cluster-wide. Two sidecars and two brokers on one redis-server; the
 * session ledger's atomic reserve (one Lua script) admits a CONNECT only while every limited scope on the
 * actor's path is under its `maxSessions`. Refused CONNECTs get CONNACK 3 and never take over a session.
 * The retained quota is counted in Redis too: shared by both brokers and kept across a broker restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisPolicyStore, createRedisClient } from '../authz-sidecar/store/redis-policy-store.ts';
import { ScopeGateClient } from '../client/index.ts';
import { connect, type TestClient } from './helpers/mqtt.ts';
import { startRedis, uniquePrefix, type RedisHandle } from './helpers/redis-server.ts';
import { startSidecar, type TestSidecar } from './helpers/sidecar.ts';
import { createActor, createProject, startTestBroker, type TestBroker } from './helpers/system.ts';

let redis: RedisHandle;
let sidecars: TestSidecar[] = [];
let brokers: TestBroker[] = [];

beforeAll(async () => {
  redis = await startRedis();
  // Two sidecars sharing one store (and so one session ledger) in Redis, each feeding its own broker; the
  // brokers share sessions and traffic through the same Redis. In one process: quicker to start than four.
  const prefix = uniquePrefix('maxsessions');
  sidecars = [await startSidecar(new RedisPolicyStore({ redis: createRedisClient(redis.url), prefix }))];
  sidecars.push(await startSidecar(new RedisPolicyStore({ redis: createRedisClient(redis.url), prefix })));
  // A generous sidecar timeout: on a loaded machine a CONNECT decision that times out also answers CONNACK 3,
  // which this test must not mistake for a session-limit refusal.
  brokers = await Promise.all(sidecars.map((s) => startTestBroker(s.url, s.brokerToken, { redisUrl: redis.url, sidecarTimeoutMs: 20_000 })));
}, 60_000);
afterAll(async () => {
  await Promise.all(brokers.map((b) => b.close()));
  await Promise.all(sidecars.map((s) => s.close()));
  await redis?.stop();
});

/** CONNACK code of one attempt; an accepted client stays connected (returned). */
async function attempt(url: string, username: string, password: string, clientId: string): Promise<{ code: number; client?: TestClient }> {
  try {
    return { code: 0, client: await connect(url, username, password, { clientId, connectTimeout: 30_000 }) };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'number') return { code };
    throw err;
  }
}

describe('maxSessions', () => {
  it('is exact under 50 concurrent CONNECTs spread over two brokers, refused with CONNACK 3, released at session end', async () => {
    const sg = new ScopeGateClient({ baseUrl: sidecars[0]!.url, token: sidecars[0]!.adminToken });
    const { api, orgId, projectId } = await createProject(sg, 'max-sessions');
    const scope = await api.scopes.create({ slug: 'fleet', name: 'Fleet' });
    const app = await api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
    const device = await createActor(api, 'device', scope.accessScopeId, [app.appId]);
    // The tenant allows 30; the access scope narrows it to 10 (a child only narrows).
    await sg.tenants.update(orgId, { limits: { maxSessions: 30 } });
    const { revision } = await sg.project(orgId, projectId).scopes.update(scope.accessScopeId, { limits: { maxSessions: 10 } });
    // Both sidecars have applied the limit before the storm.
    for (const s of sidecars) {
      const res = await fetch(`${s.url}/v1/evaluate`, {
        method: 'POST',
        headers: { authorization: `Bearer ${s.adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ actor: { subjectId: device.subjectId, subjectType: 'actor' }, scopeId: scope.accessScopeId, action: 'x', resource: { resourceType: 'y' }, consistency: { atLeastAsFresh: revision } }),
      });
      expect(res.status).toBe(200);
    }

    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => attempt(brokers[i % 2]!.url, device.actorId, device.token, `c${i}`)));
    const accepted = results.filter((r) => r.code === 0);
    expect(accepted).toHaveLength(10);
    expect(results.filter((r) => r.code === 3)).toHaveLength(40);
    const clients = accepted.map((r) => r.client!);

    // At the limit, a CONNECT with the client id of a live session is refused and does not take it over.
    const heldId = String(clients[0]!.client.options.clientId);
    const again = await attempt(brokers[1]!.url, device.actorId, device.token, heldId);
    expect(again.code).toBe(3);
    expect(clients[0]!.client.connected).toBe(true);

    // A session that ends frees its slot (the broker reports the end to the ledger); exactly one.
    await clients[1]!.end();
    let freed: { code: number; client?: TestClient } = { code: 3 };
    for (let i = 0; i < 100 && freed.code !== 0; i++) {
      freed = await attempt(brokers[i % 2]!.url, device.actorId, device.token, `after-${i}`);
      if (freed.code !== 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(freed.code).toBe(0);
    expect((await attempt(brokers[0]!.url, device.actorId, device.token, 'one-too-many')).code).toBe(3);

    await Promise.all([...clients.slice(2), clients[0]!, freed.client!].map((c) => c.end()));
  }, 90_000);
});

describe('the retained quota in Redis mode', () => {
  it('is shared by every broker and kept across a broker restart', async () => {
    const sg = new ScopeGateClient({ baseUrl: sidecars[0]!.url, token: sidecars[0]!.adminToken });
    const { api, orgId, projectId } = await createProject(sg, 'retained-cluster');
    const scope = await api.scopes.create({ slug: 'fleet', name: 'Fleet' });
    const app = await api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
    const device = await createActor(api, 'device', scope.accessScopeId, [app.appId]);
    await sg.project(orgId, projectId).scopes.update(scope.accessScopeId, { limits: { retained: { maxMessages: 2 } } });
    const open = (b: TestBroker) => connect(b.url, device.actorId, device.token);
    const refused = async (b: TestBroker, topic: string) => {
      const c = await open(b);
      c.client.publish(topic, 'over', { qos: 1, retain: true });
      await c.closed; // a refused publish closes the connection (MQTT_DENY_ACTION=disconnect)
    };

    // One retained message through each broker fills the scope's quota of 2: a third is refused on both.
    const a = await open(brokers[0]!);
    await a.publish('my-app/r1', 'one', { qos: 1, retain: true });
    const b = await open(brokers[1]!);
    await b.publish('my-app/r2', 'two', { qos: 1, retain: true });
    await refused(brokers[0]!, 'my-app/r3');
    await refused(brokers[1]!, 'my-app/r3');
    // Replacing a stored one is admitted on the other broker (it takes no new slot).
    await b.publish('my-app/r1', 'one again', { qos: 1, retain: true });
    await Promise.all([a.end(), b.end()]);

    // A restarted broker still counts what is stored.
    await brokers[1]!.close();
    brokers[1] = await startTestBroker(sidecars[1]!.url, sidecars[1]!.brokerToken, { redisUrl: redis.url, sidecarTimeoutMs: 20_000 });
    await refused(brokers[1]!, 'my-app/r3');
    // Clearing one (an empty retained payload) on one broker frees the slot for the other.
    const clear = await open(brokers[0]!);
    await clear.publish('my-app/r2', '', { qos: 1, retain: true });
    await clear.end();
    const c = await open(brokers[1]!);
    await c.publish('my-app/r3', 'three', { qos: 1, retain: true });
    const s = await open(brokers[0]!);
    expect(await s.subscribe('my-app/#', 1)).toEqual([1]);
    await s.next((m) => m.payload === 'three', 5_000);
    await s.next((m) => m.payload === 'one again', 5_000);
    await Promise.all([c.end(), s.end()]);
  }, 60_000);
});
