/**
 * The live session ledger end to end: brokers report sessions to the sidecar; the admin API lists them (an API
 * key sees only its subtree), shows their subscriptions in the client's view, disconnects one through its
 * broker, and forgets a dead broker's sessions. In Redis mode two sidecars share it: a session on a broker fed
 * by sidecar A is listed and disconnected through sidecar B.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScopeGateClient } from '../client/index.ts';
import { RedisPolicyStore, createRedisClient } from '../authz-sidecar/store/redis-policy-store.ts';
import { run } from '../cli/main.ts';
import { connect } from './helpers/mqtt.ts';
import { startRedis, uniquePrefix, type RedisHandle } from './helpers/redis-server.ts';
import { startSidecar, type TestSidecar } from './helpers/sidecar.ts';
import { createActor, createProject, startTestBroker, type TestBroker } from './helpers/system.ts';

type Session = { sessionId: string; actorId: string; clientId: string; brokerId: string; state: string; subscriptions: string[]; tenantId: string; accessScopeId: string | null };
const list = async (side: TestSidecar, query = '', token?: string) => (await side.ok<{ data: Session[]; total: number }>('GET', `/v1/sessions${query}`, undefined, token)).data;

describe('live sessions (in-memory sidecar)', () => {
  let side: TestSidecar;
  let broker: TestBroker;
  beforeAll(async () => {
    side = await startSidecar();
    broker = await startTestBroker(side.url, side.brokerToken);
  });
  afterAll(async () => {
    await broker?.close();
    await side?.close();
  });

  it('lists connected sessions with their subscriptions, confines API keys, disconnects through the broker', async () => {
    const sg = new ScopeGateClient({ baseUrl: side.url, token: side.adminToken });
    const one = await createProject(sg, 'sessions-one');
    const two = await createProject(sg, 'sessions-two');
    const acme = await one.api.scopes.create({ slug: 'acme-corp', name: 'Acme' });
    const app1 = await one.api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
    const app2 = await two.api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
    const alice = await createActor(one.api, 'alice', acme.accessScopeId, [app1.appId]);
    const bob = await createActor(two.api, 'bob', null, [app2.appId]);

    const a = await connect(broker.url, alice.actorId, alice.token, { clientId: 'alice-phone' });
    const b = await connect(broker.url, bob.actorId, bob.token, { clientId: 'bob-1' });
    expect(await a.subscribe(['my-app/chat/#', 'other-app/x'])).toEqual([0, 128]);
    await expect.poll(async () => (await list(side, `?actorId=${alice.actorId}`))[0]?.subscriptions, { timeout: 3_000, interval: 50 }).toEqual(['my-app/chat/#']);
    const [mine] = await list(side, `?scopeId=${acme.accessScopeId}`);
    expect(mine).toMatchObject({ actorId: alice.actorId, clientId: 'alice-phone', tenantId: one.orgId, accessScopeId: acme.accessScopeId, state: 'connected', brokerId: broker.broker.ledger.brokerId });
    expect((await list(side, `?tenantId=${two.orgId}`)).map((s) => s.clientId)).toEqual(['bob-1']);

    // An API key of tenant one never sees tenant two's sessions, nor reads or disconnects them.
    const tenantScope = (await side.ok('GET', `/v1/tenants/${one.orgId}`)).scopeId;
    const key = (await side.ok('POST', '/v1/api-keys', { scopeId: tenantScope, name: 'one' })).key as string;
    expect((await list(side, '', key)).map((s) => s.actorId)).toEqual([alice.actorId]);
    const bobSession = (await list(side, `?actorId=${bob.actorId}`))[0]!;
    expect((await side.api('POST', `/v1/sessions/${bobSession.sessionId}/disconnect`, undefined, key)).status).toBe(403);
    expect((await side.api('GET', `/v1/sessions/sess_nope`)).body.error.code).toBe('NOT_FOUND');
    expect((await side.api('GET', '/v1/sessions?limit=0')).body.error.code).toBe('VALIDATION_FAILED');

    // The CLI shows the same data, and disconnects too (exit 1 with the API's error for an unknown session).
    const cli = async (...argv: string[]) => {
      let out = '';
      let err = '';
      const code = await run([...argv, '--url', side.url, '--token', side.adminToken], { stdout: (t) => (out += t), stderr: (t) => (err += t), env: {} });
      return { code, out, err };
    };
    const table = await cli('sessions', 'list', '--tenant', one.orgId);
    expect(table.code).toBe(0);
    expect(table.out).toContain(mine!.sessionId);
    expect(table.out).toContain('my-app/chat/#');
    expect(table.out).not.toContain(bob.actorId);
    expect(JSON.parse((await cli('sessions', 'list', '--actor', bob.actorId, '--json')).out).data[0].clientId).toBe('bob-1');
    expect(await cli('sessions', 'disconnect', 'sess_nope')).toMatchObject({ code: 1, err: expect.stringContaining('NOT_FOUND') });

    // Unsubscribing shows in the ledger; disconnect closes the connection and the session leaves the list.
    await a.client.unsubscribeAsync('my-app/chat/#');
    await expect.poll(async () => (await list(side, `?actorId=${alice.actorId}`))[0]?.subscriptions, { timeout: 3_000, interval: 50 }).toEqual([]);
    const res = await side.api('POST', `/v1/sessions/${mine!.sessionId}/disconnect`, undefined, key);
    expect(res).toMatchObject({ status: 202, body: { sessionId: mine!.sessionId, status: 'disconnect_requested' } });
    await a.closed;
    await expect.poll(async () => (await list(side)).map((s) => s.actorId), { timeout: 3_000, interval: 50 }).toEqual([bob.actorId]);
    expect(b.client.connected).toBe(true);
    await b.end();
    await expect.poll(async () => (await list(side)).length, { timeout: 3_000, interval: 50 }).toBe(0);
  });

  it("forgets a broker's sessions when its lease runs out", async () => {
    const sg = new ScopeGateClient({ baseUrl: side.url, token: side.adminToken });
    const p = await createProject(sg, 'sessions-lease');
    const app = await p.api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
    const carol = await createActor(p.api, 'carol', null, [app.appId]);
    // A broker that reports one session, then dies (never renews its 1 s lease).
    const report = { brokerId: 'broker-that-dies', leaseMs: 1_000, events: [], sync: [{ sessionId: 'sess_dead', actorId: carol.actorId, clientId: 'c', connectedAt: Date.now(), state: 'connected', subscriptions: [] }] };
    expect(await side.ok('POST', '/v1/broker/ledger', report, side.brokerToken)).toEqual({ known: true, sessions: 1 });
    expect((await list(side, `?actorId=${carol.actorId}`)).map((s) => s.sessionId)).toEqual(['sess_dead']);
    await expect.poll(async () => (await list(side, `?actorId=${carol.actorId}`)).length, { timeout: 5_000, interval: 100 }).toBe(0);
    expect((await side.api('POST', '/v1/broker/ledger', report, side.adminToken)).status).toBe(401);
  });
});

describe('live sessions shared by two sidecars on one Redis', () => {
  let redis: RedisHandle;
  let a: TestSidecar;
  let b: TestSidecar;
  let broker: TestBroker;
  beforeAll(async () => {
    redis = await startRedis();
    const prefix = uniquePrefix('sessions');
    a = await startSidecar(new RedisPolicyStore({ redis: createRedisClient(redis.url), prefix }));
    b = await startSidecar(new RedisPolicyStore({ redis: createRedisClient(redis.url), prefix }));
    broker = await startTestBroker(a.url, a.brokerToken);
  });
  afterAll(async () => {
    await broker?.close();
    await a?.close();
    await b?.close();
    await redis?.stop();
  });

  it('lists on sidecar B a session decided by sidecar A, and disconnects it from B', async () => {
    const sg = new ScopeGateClient({ baseUrl: a.url, token: a.adminToken });
    const p = await createProject(sg, 'shared');
    const app = await p.api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
    const dave = await createActor(p.api, 'dave', null, [app.appId]);
    const c = await connect(broker.url, dave.actorId, dave.token, { clientId: 'dave-1' });
    await c.subscribe('my-app/+/status');
    await expect.poll(async () => (await list(b, `?actorId=${dave.actorId}`))[0]?.subscriptions, { timeout: 3_000, interval: 50 }).toEqual(['my-app/+/status']);
    const [s] = await list(b);
    expect(s).toMatchObject({ clientId: 'dave-1', state: 'connected' });
    expect((await b.api('POST', `/v1/sessions/${s!.sessionId}/disconnect`)).status).toBe(202);
    await c.closed;
    await expect.poll(async () => (await list(b)).length, { timeout: 3_000, interval: 50 }).toBe(0);
  });
});
