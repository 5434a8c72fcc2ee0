/**
 * Issue 11 item 10, performed as the attack: a customer's access scope is deleted and a new customer gets a
 * scope with the same slug. Before the fix its actors received the old customer's retained messages, since
 * namespaces are built from slugs. Now, in both modes (in-memory broker, and a Redis broker on the same
 * sidecar): deleting a scope removes its retained messages and its deleted actors' stored sessions
 * (subscriptions and queues), and creating a scope empties its namespace first, so what a missed deletion
 * might have left is not inherited either. What the removed retained messages counted against the retained
 * quota is given back (the project allows 3; the new customer's is the 4th stored in all).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisOutgoingKey } from '../broker/aedes-internals.ts';
import type { RunningBroker } from '../broker/server.ts';
import { connect } from './helpers/mqtt.ts';
import { pollUntil } from './helpers/faults.ts';
import { startRedis, type RedisHandle } from './helpers/redis-server.ts';
import { createActor, createProject, startSystem, startTestBroker, type TestBroker, type TestSystem } from './helpers/system.ts';

const PREFIX = 'reuse:';
let sys: TestSystem;
let redis: RedisHandle;
let redisBroker: TestBroker;
let probe: Redis;

beforeAll(async () => {
  [sys, redis] = await Promise.all([startSystem(), startRedis()]);
  redisBroker = await startTestBroker(sys.side.url, sys.side.brokerToken, { redisUrl: redis.url, redisBrokerPrefix: PREFIX });
  probe = new Redis(redis.url);
}, 30_000);
afterAll(async () => {
  probe?.disconnect();
  await redisBroker?.close();
  await sys?.close();
  await redis?.stop();
});

/** What this broker has removed so far (scopegate_broker_removed_state_total). */
async function removed(b: RunningBroker, what: 'retained_removed' | 'retained_moved' | 'stored_sessions'): Promise<number> {
  const metric = await b.context.metrics.removedState.get();
  return metric.values.find((v) => v.labels.what === what)?.value ?? 0;
}

describe.each([
  { mode: 'in-memory', broker: () => sys.broker },
  { mode: 'Redis', broker: () => redisBroker },
])('a deleted scope whose slug is reused ($mode)', ({ mode, broker }) => {
  it("gives the new customer nothing of the old one: no retained message, and the old actors' stored sessions are gone", { timeout: 30_000 }, async () => {
    const b = broker();
    const { api, projectId } = await createProject(sys.sg, `reuse-${mode === 'Redis' ? 'r' : 'm'}`);
    // Three retained messages for the whole project: what a deleted scope stored must be given back.
    await sys.sg.projects.update(projectId, { limits: { retained: { maxMessages: 3 } } });
    const app = await api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
    const backend = await createActor(api, 'backend', null, [app.appId]);
    const old = await api.scopes.create({ slug: 'customer', name: 'Old customer' });
    const alice = await createActor(api, 'alice', old.accessScopeId, [app.appId]);

    // The old customer keeps state in retained messages and a persistent session with a queued message.
    const a = await connect(b.url, alice.actorId, alice.token);
    await a.publish('my-app/state', 'old-customer-secret', { qos: 1, retain: true });
    await a.publish('my-app/deep/config', 'old-customer-config', { qos: 1, retain: true });
    await a.end();
    const keeper = await connect(b.url, alice.actorId, alice.token, { clean: false, clientId: 'keeper' });
    expect(await keeper.subscribe('my-app/#', 1)).toEqual([1]);
    await keeper.end();
    const be = await connect(b.url, backend.actorId, backend.token);
    await be.publish('my-app/customer/orders', 'queued-for-alice', { qos: 1 });
    const storedSession = `${alice.actorId}/keeper`;
    if (mode === 'Redis') {
      expect(await probe.sismember(`${PREFIX}clients`, storedSession)).toBe(1);
      expect(await probe.llen(PREFIX + redisOutgoingKey(storedSession))).toBe(1);
    }

    const before = { retained: await removed(b.broker, 'retained_removed'), sessions: await removed(b.broker, 'stored_sessions') };
    await api.scopes.delete(old.accessScopeId, { cascade: true });
    await pollUntil(async () => (await removed(b.broker, 'retained_removed')) >= before.retained + 2 && (await removed(b.broker, 'stored_sessions')) >= before.sessions + 1, 10_000, 20);
    expect(await removed(b.broker, 'retained_removed')).toBe(before.retained + 2);
    expect(await removed(b.broker, 'stored_sessions')).toBe(before.sessions + 1);
    if (mode === 'Redis') {
      expect(await probe.sismember(`${PREFIX}clients`, storedSession)).toBe(0);
      expect(await probe.exists(PREFIX + redisOutgoingKey(storedSession))).toBe(0);
    }

    // What a deletion the broker missed would have left (here planted by the project-level actor).
    await be.publish('my-app/customer/planted', 'left-behind', { qos: 1, retain: true });
    const plantedAt = await removed(b.broker, 'retained_removed');

    // A new customer gets the same slug: its namespace is emptied at creation.
    const fresh = await api.scopes.create({ slug: 'customer', name: 'New customer' });
    await pollUntil(async () => (await removed(b.broker, 'retained_removed')) > plantedAt, 10_000, 20);
    const bob = await createActor(api, 'bob', fresh.accessScopeId, [app.appId]);
    const bobPub = await connect(b.url, bob.actorId, bob.token);
    await bobPub.publish('my-app/zz-sentinel', 'new-customer', { qos: 1, retain: true });
    await bobPub.end();
    const bobSub = await connect(b.url, bob.actorId, bob.token);
    expect(await bobSub.subscribe('my-app/#', 1)).toEqual([1]);
    await bobSub.next((m) => m.payload === 'new-customer', 5_000);
    // The project-level view of the namespace holds the new customer's retained message and nothing else.
    const view = await connect(b.url, backend.actorId, backend.token);
    expect(await view.subscribe('my-app/customer/#', 1)).toEqual([1]);
    await view.next((m) => m.payload === 'new-customer', 5_000);
    expect(bobSub.messages.map((m) => m.payload)).toEqual(['new-customer']);
    expect(view.messages.map((m) => m.payload)).toEqual(['new-customer']);
    await Promise.all([bobSub.end(), view.end(), be.end()]);
  });

  it('moves a moved scope’s retained messages with it, so its devices keep their state and its old path keeps nothing', { timeout: 30_000 }, async () => {
    const b = broker();
    const { api } = await createProject(sys.sg, `move-${mode === 'Redis' ? 'r' : 'm'}`);
    const app = await api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
    const backend = await createActor(api, 'backend', null, [app.appId]);
    const east = await api.scopes.create({ slug: 'east', name: 'East' });
    const west = await api.scopes.create({ slug: 'west', name: 'West' });
    const site = await api.scopes.create({ slug: 'site', name: 'Site', parentScopeId: east.accessScopeId });
    const device = await createActor(api, 'device', site.accessScopeId, [app.appId]);
    const d = await connect(b.url, device.actorId, device.token);
    await d.publish('my-app/config', 'site-config', { qos: 1, retain: true });
    await d.end();

    const movedBefore = await removed(b.broker, 'retained_moved');
    await api.scopes.move(site.accessScopeId, west.accessScopeId);
    await pollUntil(async () => (await removed(b.broker, 'retained_moved')) > movedBefore, 10_000, 20);

    // The device (re-decided into west/site) still finds its retained state under its own topic.
    const again = await connect(b.url, device.actorId, device.token);
    expect(await again.subscribe('my-app/config', 1)).toEqual([1]);
    expect((await again.next((m) => m.topic === 'my-app/config', 5_000)).payload).toBe('site-config');
    // The project-level view finds it under the new path only; a new scope at the old path starts empty.
    const view = await connect(b.url, backend.actorId, backend.token);
    await view.publish('my-app/zz-sentinel', 'sentinel', { qos: 1, retain: true });
    expect(await view.subscribe(['my-app/west/site/config', 'my-app/east/#', 'my-app/zz-sentinel'], 1)).toEqual([1, 1, 1]);
    await view.next((m) => m.payload === 'sentinel', 5_000);
    await view.next((m) => m.topic === 'my-app/west/site/config', 5_000);
    expect(view.messages.filter((m) => m.topic.startsWith('my-app/east/'))).toEqual([]);
    await Promise.all([again.end(), view.end()]);
  });
});
