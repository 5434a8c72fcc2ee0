/**
 * Issue 11, item 2 (Redis mode): no will, stored or live, can crash a broker, and a stored will follows moves
 * and revocations. Three brokers share one Redis; devices with wills sit on broker 2, which is SIGKILLed; the
 * devices reconnect to brokers 1 and 3 at once, so whichever broker sweeps the dead broker's wills finds their
 * owners connected to it (before the fix: authorizePublish refused the stored `$sg/…` topic, Aedes emitted
 * 'error' with no listener, and the broker exited — then the next one, since the will stayed stored).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScopeGateClient } from '../client/index.ts';
import { Cleanup } from './helpers/faults.ts';
import { connect } from './helpers/mqtt.ts';
import { startBrokerProcess } from './helpers/processes.ts';
import { startRedis, type RedisHandle } from './helpers/redis-server.ts';
import { startSidecar, type TestSidecar } from './helpers/sidecar.ts';
import { createActor, createProject } from './helpers/system.ts';

const cleanup = new Cleanup();
let redis: RedisHandle;
let side: TestSidecar;
let brokers: Array<Awaited<ReturnType<typeof startBrokerProcess>>>;
beforeAll(async () => {
  redis = cleanup.add(await startRedis());
  side = await startSidecar();
  cleanup.defer(() => side.close());
  // Short heartbeats: a broker silent for 3 intervals is dead, and wills are swept every 4 intervals.
  const env = { REDIS_URL: redis.url, BROKER_TOKEN: side.brokerToken, SIDECAR_URL: side.url, BROKER_HEARTBEAT_MS: '300' };
  brokers = await Promise.all([1, 2, 3].map(() => startBrokerProcess(env)));
  for (const b of brokers) cleanup.add(b);
}, 60_000);
afterAll(() => cleanup.run());

describe('wills of a dead broker (three brokers on one Redis)', () => {
  it('crash no broker, follow moves and revocations, and are published once in the right view', async () => {
    const sg = new ScopeGateClient({ baseUrl: side.url, token: side.adminToken });
    const { api } = await createProject(sg, 'wills');
    const acme = await api.scopes.create({ slug: 'acme-corp', name: 'Acme' });
    const globex = await api.scopes.create({ slug: 'globex', name: 'Globex' });
    const app = await api.apps.create({ slug: 'app', name: 'App', mode: 'open' });
    const watcherActor = await createActor(api, 'watcher', null, [app.appId]);
    const names = ['d1', 'd3', 'mover', 'revoked'] as const;
    const actors = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await createActor(api, n, acme.accessScopeId, [app.appId])] as const)));
    const [b1, b2, b3] = brokers as [(typeof brokers)[0], (typeof brokers)[0], (typeof brokers)[0]];

    const watcher = await connect(b1.url, watcherActor.actorId, watcherActor.token);
    await watcher.subscribe('app/#', 1);
    const devices = await Promise.all(
      names.map((n) => connect(b2.url, actors[n]!.actorId, actors[n]!.token, { clientId: n, will: { topic: `app/status/${n}`, payload: Buffer.from(`offline ${n}`), qos: 1, retain: false } })),
    );
    const mover = devices[names.indexOf('mover')]!;
    await api.actors.update(actors.mover!.actorId, { accessScopeId: globex.accessScopeId });
    // The move has reached broker 2 once the mover's publishes land in its new namespace.
    await expect.poll(async () => {
      await mover.publish('app/probe', 'probe', { qos: 1 });
      return (await watcher.next((m) => m.topic === 'app/globex/probe', 200).catch(() => null)) !== null;
    }, { timeout: 5_000, interval: 20 }).toBe(true);

    // The wills sit in Redis under the broker's key prefix (REDIS_BROKER_PREFIX, default `sgb:`).
    const stored = new Redis(redis.url);
    try {
      expect(await stored.llen('sgb:will')).toBe(names.length);
    } finally {
      stored.disconnect();
    }
    await b2.kill();
    // The owners are back at once, on the surviving brokers (before any sweep: the dead broker is only
    // declared dead after three silent heartbeats).
    const back = [await connect(b3.url, actors.d1!.actorId, actors.d1!.token, { clientId: 'd1' }), await connect(b1.url, actors.d3!.actorId, actors.d3!.token, { clientId: 'd3' })];
    await api.actors.update(actors.revoked!.actorId, { disabled: true });

    // Every stored will of broker 2 gets swept (published or discarded) by a surviving broker.
    const db = new Redis(redis.url);
    try {
      await expect.poll(() => db.llen('sgb:will'), { timeout: 15_000, interval: 100 }).toBe(0);
    } finally {
      db.disconnect();
    }
    expect(b1.child.exitCode).toBeNull();
    expect(b3.child.exitCode).toBeNull();
    for (const b of [b1, b3]) expect((await fetch(`http://127.0.0.1:${b.metricsPort}/healthz`)).status).toBe(200);

    await back[0]!.publish('app/sentinel', 'sentinel', { qos: 1 });
    await watcher.next((m) => m.payload === 'sentinel', 5_000);
    if (process.env.DEBUG_WILLS) console.log(JSON.stringify([b1, b3].map((b) => b.lines.filter((l) => /will|error/i.test(String(l.msg))))), JSON.stringify(watcher.messages));
    const wills = watcher.messages.filter((m) => m.payload.startsWith('offline')).map((m) => `${m.topic} ${m.payload}`);
    expect(wills.sort()).toEqual(['app/acme-corp/status/d1 offline d1', 'app/acme-corp/status/d3 offline d3', 'app/globex/status/mover offline mover']);
    // The brokers that swept logged the discarded will rather than dying.
    await Promise.all([watcher.end(), ...back.map((c) => c.end())]);
  });
});
