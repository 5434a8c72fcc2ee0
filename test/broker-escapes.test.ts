/**
 * The escape catalogue of SPEC §4, one test each: whatever a client sends, it stays inside its scope.
 * Two tenants (acme-corp, globex) of one project share an app; each test tries one way out.
 */
import { createConnection } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedWithin, connackCode, connect, receivedBefore, type TestClient } from './helpers/mqtt.ts';
import { allowTopics, createActor, createProject, startSystem, startTestBroker, type TestSystem } from './helpers/system.ts';

let sys: TestSystem;
let api: Awaited<ReturnType<typeof createProject>>['api'];
type Actor = { actorId: string; subjectId: string; token: string };
let alice: Actor, alice2: Actor, bob: Actor, backend: Actor, sensor: Actor, disabled: Actor;


beforeAll(async () => {
  sys = await startSystem();
  ({ api } = await createProject(sys.sg, 'escapes'));
  const acme = await api.scopes.create({ slug: 'acme-corp', name: 'Acme' });
  const globex = await api.scopes.create({ slug: 'globex', name: 'Globex' });

  const app = await api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
  const other = await api.apps.create({ slug: 'other-app', name: 'Other', mode: 'open' });
  const sensors = await api.apps.create({ slug: 'sensors', name: 'Sensors', mode: 'rbac' });
  alice = await createActor(api, 'alice', acme.accessScopeId, [app.appId, sensors.appId]);
  alice2 = await createActor(api, 'alice-2', acme.accessScopeId, [app.appId, sensors.appId]);
  bob = await createActor(api, 'bob', globex.accessScopeId, [app.appId, other.appId]);
  backend = await createActor(api, 'backend', null, [app.appId]);
  sensor = await createActor(api, 'sensor', acme.accessScopeId, [sensors.appId]);
  disabled = await createActor(api, 'gone', acme.accessScopeId, [app.appId]);
  await api.actors.update(disabled.actorId, { disabled: true });
  await allowTopics(sys.side, sensor.subjectId, acme.accessScopeId, [
    ['publish', 'sensors/+/temp'],
    ['subscribe', 'sensors/+/temp'],
  ]);
  await allowTopics(sys.side, alice.subjectId, acme.accessScopeId, [['subscribe', 'sensors/#']]);
});
afterAll(() => sys?.close());

const open = (a: Actor, options = {}) => connect(sys.url, a.actorId, a.token, options);
async function withClients(fn: (c: { a: TestClient; a2: TestClient; b: TestClient; be: TestClient }) => Promise<void>) {
  const [a, a2, b, be] = await Promise.all([open(alice), open(alice2), open(bob), open(backend)]);
  try {
    await fn({ a, a2, b, be });
  } finally {
    await Promise.all([a, a2, b, be].map((c) => c.end()));
  }
}
/** Publishes and resolves once the broker has closed the connection (the default MQTT_DENY_ACTION). */
async function expectDisconnectOnPublish(c: TestClient, topic: string) {
  c.client.publish(topic, 'x', { qos: 0 });
  await closedWithin(c, 2_000);
}

describe('CONNECT', () => {
  it('answers CONNACK 4 for bad credentials, 5 for a disabled actor, 0 for a valid token', async () => {
    expect(await connackCode(sys.url, alice.actorId, 'wrong')).toBe(4);
    expect(await connackCode(sys.url, 'actor_nobody', alice.token)).toBe(4);
    expect(await connackCode(sys.url, bob.actorId, alice.token)).toBe(4);
    expect(await connackCode(sys.url, disabled.actorId, disabled.token)).toBe(5);
    expect(await connackCode(sys.url, alice.actorId, alice.token)).toBe(0);
  });

  it('works over WebSocket too', async () => {
    const c = await connect(sys.broker.wsUrl, alice.actorId, alice.token);
    expect(await c.subscribe('my-app/ws')).toEqual([0]);
    await c.publish('my-app/ws', 'over ws');
    expect((await c.next()).topic).toBe('my-app/ws');
    await c.end();
  });
});

describe('wildcards', () => {
  it('refuses a wildcard first level (# and +/...) with SUBACK 0x80', async () => {
    await withClients(async ({ a }) => {
      expect(await a.subscribe('#')).toEqual([128]);
      expect(await a.subscribe('+/chat')).toEqual([128]);
      expect(await a.subscribe(['my-app/ok', '+', 'my-app/also'])).toEqual([0, 128, 0]);
    });
  });

  it('a wildcard at the namespace level stays inside the scope', async () => {
    await withClients(async ({ a, a2, b }) => {
      expect(await a.subscribe(['my-app/+/messages', 'my-app/#'])).toEqual([0, 0]);
      await b.publish('my-app/chat/messages', 'globex secret', { qos: 1 });
      await b.publish('my-app/globex/chat/messages', 'globex nested', { qos: 1 });
      // Both were acknowledged, so handed to every subscriber: the sentinel comes after them.
      expect(await receivedBefore(a, a2, 'my-app/sentinel')).toEqual([]);
    });
  });

  it('naming another scope in the topic only reaches a sub-topic of one’s own scope', async () => {
    await withClients(async ({ a, b, be }) => {
      await b.subscribe('my-app/#');
      await be.subscribe('my-app/#');
      await a.publish('my-app/globex/chat/messages', 'spoof');
      expect((await be.next()).topic).toBe('my-app/acme-corp/globex/chat/messages');
      // One emit delivers to every subscriber: a copy for b would be ahead of b's sentinel.
      expect(await receivedBefore(b, b, 'my-app/sentinel')).toEqual([]);
    });
  });
});

describe('system and shared topics', () => {
  it('refuses $SYS subscriptions and publishes', async () => {
    await withClients(async ({ a }) => {
      expect(await a.subscribe(['$SYS/#', '$SYS/broker/clients'])).toEqual([128, 128]);
      await expectDisconnectOnPublish(a, '$SYS/broker/fake');
    });
  });

  it('$share: the filter inside is decided like any other, and the group stays in the scope', async () => {
    await withClients(async ({ a, a2, b }) => {
      expect(await a.subscribe(['$share/g/my-app/#', '$share/g/#', '$share/g/+/x', '$share/g/other-app/#'])).toEqual([0, 128, 128, 128]);
      // Bob (globex) joins a group of the same name on the same filter: another tenant, another group.
      expect(await b.subscribe('$share/g/my-app/#')).toEqual([0]);
      await b.publish('my-app/x', 'from globex');
      await a2.publish('my-app/x', 'from acme');
      expect((await a.next((m) => m.payload === 'from acme')).topic).toBe('my-app/x');
      expect((await b.next((m) => m.payload === 'from globex')).topic).toBe('my-app/x');
      expect(a.messages.map((m) => m.payload)).toEqual(['from acme']);
      expect(b.messages.map((m) => m.payload)).toEqual(['from globex']);
    });
  });
});

describe('retained messages', () => {
  it('are stored and looked up under the scope: another tenant never receives them', async () => {
    await withClients(async ({ a, b }) => {
      await a.publish('my-app/status', 'acme retained', { qos: 1, retain: true });
      await b.subscribe('my-app/#');
      const late = await open(alice2, { clientId: 'late-acme' });
      await late.subscribe('my-app/status');
      const got = await late.next();
      expect(got).toMatchObject({ topic: 'my-app/status', payload: 'acme retained', retain: true });
      // b's retained lookup ran when it subscribed, in process (in-memory persistence: no I/O), before the broker
      // read b's next packet; so a retained message for b would arrive ahead of b's own sentinel.
      expect(await receivedBefore(b, b, 'my-app/sentinel')).toEqual([]);
      await late.end();
    });
  });
});

describe('wills', () => {
  it('are rewritten at CONNECT and delivered in the scope only', async () => {
    await withClients(async ({ a2, b }) => {
      await a2.subscribe('my-app/presence');
      await b.subscribe('my-app/#');
      const dying = await open(alice, { clientId: 'dying', will: { topic: 'my-app/presence', payload: Buffer.from('alice gone'), qos: 1, retain: false } });
      dying.client.stream.destroy();
      expect(await a2.next((m) => m.payload === 'alice gone')).toMatchObject({ topic: 'my-app/presence' });
      expect(await receivedBefore(b, b, 'my-app/sentinel')).toEqual([]);
    });
  });

  it('refuses the CONNECT (5) when the will names a topic the actor may not publish', async () => {
    const will = (topic: string) => ({ will: { topic, payload: Buffer.from('x'), qos: 0 as const, retain: false } });
    expect(await connackCode(sys.url, alice.actorId, alice.token, will('other-app/x'))).toBe(5);
    expect(await connackCode(sys.url, alice.actorId, alice.token, will('$SYS/x'))).toBe(5);
    expect(await connackCode(sys.url, alice.actorId, alice.token, will('#'))).toBe(5);
    expect(await connackCode(sys.url, alice.actorId, alice.token, will('my-app/../x'))).toBe(5);
  });
});

describe('client ids', () => {
  it('the same client id in two scopes neither takes over nor shares a session', async () => {
    const a = await open(alice, { clientId: 'device-1', clean: false });
    await a.subscribe('my-app/inbox', 1);
    const b = await open(bob, { clientId: 'device-1', clean: false });
    expect(b.client.connected).toBe(true);
    expect(await b.subscribe('my-app/sentinel', 1)).toEqual([1]);
    // No takeover: a takeover closes the old session before the new one's CONNACK, so alice's session would
    // not get a message published after bob connected.
    const sender = await open(alice2);
    await sender.publish('my-app/inbox', 'for alice', { qos: 1 });
    expect((await a.next()).payload).toBe('for alice');
    expect(a.client.connected).toBe(true);
    // bob's session is his own: nothing of alice's is restored or queued for him (ahead of his sentinel).
    expect(await receivedBefore(b, b, 'my-app/sentinel')).toEqual([]);
    await Promise.all([a.end(), b.end(), sender.end()]);
  });
});

describe('persistent sessions', () => {
  it('restore the subscription without a double prefix and deliver queued messages in the own view', async () => {
    const first = await open(alice, { clientId: 'persistent-1', clean: false });
    await first.subscribe('my-app/queue', 1);
    await first.end();
    const sender = await open(alice2);
    await sender.publish('my-app/queue', 'queued while offline', { qos: 1 });
    const again = await open(alice, { clientId: 'persistent-1', clean: false });
    expect(await again.next((m) => m.payload === 'queued while offline')).toMatchObject({ topic: 'my-app/queue' });
    // The restored subscription still works live (it was not prefixed twice).
    await sender.publish('my-app/queue', 'live after restore', { qos: 1 });
    expect((await again.next((m) => m.payload === 'live after restore')).topic).toBe('my-app/queue');
    await Promise.all([again.end(), sender.end()]);
  });
});

describe('unsubscribe', () => {
  it('with the client’s own filter removes the subscription', async () => {
    await withClients(async ({ a, a2 }) => {
      await a.subscribe(['my-app/news', 'my-app/sentinel']);
      await a2.publish('my-app/news', 'one');
      await a.next((m) => m.payload === 'one');
      await a.client.unsubscribeAsync('my-app/news');
      await a2.publish('my-app/news', 'two', { qos: 1 });
      expect((await receivedBefore(a, a2, 'my-app/sentinel')).map((m) => m.payload)).toEqual(['one']);
    });
  });
});

describe('odd topics', () => {
  it('refuses .. levels', async () => {
    await withClients(async ({ a }) => {
      expect(await a.subscribe(['my-app/../#', 'my-app/./x'])).toEqual([128, 128]);
      await expectDisconnectOnPublish(a, 'my-app/../globex/chat');
    });
  });

  it('refuses empty levels', async () => {
    await withClients(async ({ a }) => {
      expect(await a.subscribe(['my-app//x', '/my-app/x', 'my-app/x/'])).toEqual([128, 128, 128]);
      await expectDisconnectOnPublish(a, 'my-app//x');
    });
  });

  it('refuses NUL and control characters', async () => {
    await withClients(async ({ a }) => {
      expect(await a.subscribe(['my-app/a\u0000b', 'my-app/a\u0007'])).toEqual([128, 128]);
      await expectDisconnectOnPublish(a, 'my-app/\u0000');
    });
  });

  it('refuses over-long and over-deep topics', async () => {
    await withClients(async ({ a, a2 }) => {
      const deep = `my-app/${Array.from({ length: 20 }, (_, i) => `l${i}`).join('/')}`;
      const long = `my-app/${'x'.repeat(2_000)}`;
      expect(await a.subscribe([deep, long])).toEqual([128, 128]);
      await expectDisconnectOnPublish(a, long);
      await expectDisconnectOnPublish(a2, deep);
    });
  });

  it('refuses apps the actor is not granted', async () => {
    await withClients(async ({ a }) => {
      expect(await a.subscribe('other-app/#')).toEqual([128]);
      await expectDisconnectOnPublish(a, 'other-app/x');
    });
  });
});

describe('rbac apps', () => {
  it('allow only what an ALLOWED evaluate at the actor’s scope allows; a filter must be covered entirely', async () => {
    const s = await open(sensor);
    const a = await open(alice);
    try {
      expect(await s.subscribe(['sensors/kitchen/temp', 'sensors/+/temp', 'sensors/#', 'sensors/kitchen/humidity'])).toEqual([0, 0, 128, 128]);
      expect(await a.subscribe('sensors/#')).toEqual([0]);
      await s.publish('sensors/kitchen/temp', '21.5');
      expect((await a.next()).topic).toBe('sensors/kitchen/temp');
      await expectDisconnectOnPublish(s, 'sensors/kitchen/humidity');
    } finally {
      await Promise.all([s.end(), a.end()]);
    }
  });
});

describe('MQTT_DENY_ACTION=drop', () => {
  it('drops a refused publish (acknowledged, never delivered) and keeps the connection', async () => {
    const dropping = await startTestBroker(sys.side.url, sys.side.brokerToken, { denyAction: 'drop' });
    try {
      const a = await connect(dropping.url, alice.actorId, alice.token);
      const b = await connect(dropping.url, bob.actorId, bob.token);
      await b.subscribe('other-app/#');
      await a.publish('other-app/x', 'refused', { qos: 1 });
      await a.publish('my-app/fine', 'ok', { qos: 1 });
      expect(a.client.connected).toBe(true);
      expect(await receivedBefore(b, b, 'other-app/sentinel')).toEqual([]);
      await Promise.all([a.end(), b.end()]);
    } finally {
      await dropping.close();
    }
  });
});

describe('raw packets', () => {
  it('a SUBSCRIBE pipelined right behind CONNECT is rewritten before Aedes handles it', async () => {
    const port = sys.broker.broker.tcpPort;
    const socket = createConnection({ port, host: '127.0.0.1' });
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    const packets: Array<{ cmd: string; granted?: number[]; returnCode?: number }> = [];
    parser.on('packet', (p) => packets.push(p as never));
    socket.on('data', (d) => parser.parse(d));
    await new Promise((r) => socket.once('connect', r));
    socket.write(
      Buffer.concat([
        mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'raw-1', keepalive: 30, username: alice.actorId, password: Buffer.from(alice.token) }),
        mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'my-app/raw', qos: 0 }, { topic: '#', qos: 0 }] } as never),
      ]),
    );
    await expect.poll(() => packets.find((p) => p.cmd === 'suback'), { timeout: 3_000 }).toBeTruthy();
    expect(packets[0]).toMatchObject({ cmd: 'connack', returnCode: 0 });
    expect(packets.find((p) => p.cmd === 'suback')?.granted).toEqual([0, 128]);
    socket.destroy();
  });
});


