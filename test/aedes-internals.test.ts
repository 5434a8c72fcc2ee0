/**
 * Contract of broker/aedes-internals.ts: one test per place where ScopeGate relies on Aedes behaviour outside
 * its typed API, so that an Aedes upgrade is one file to review and this one suite to run. Each test shows the
 * behaviour a user sees through that touch point, with real clients over real sockets, on a broker with
 * in-memory persistence and (where the persistence matters) on one with Redis persistence.
 */
import { createConnection, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkAedesVersions, installedVersion, SUPPORTED_VERSIONS, UnsupportedAedesVersionError } from '../broker/aedes-internals.ts';
import { SteppedClock } from './helpers/clock.ts';
import { closedWithin, connect, type TestClient } from './helpers/mqtt.ts';
import { startRedis, type RedisHandle } from './helpers/redis-server.ts';
import { createActor, createProject, startSystem, startTestBroker, type TestBroker, type TestSystem } from './helpers/system.ts';

type Actor = Awaited<ReturnType<typeof createActor>>;
let sys: TestSystem;
let redis: RedisHandle;
let redisBroker: TestBroker;
let api: Awaited<ReturnType<typeof createProject>>['api'];
let app: { appId: string };
let other: { appId: string };
let acmeScope: string;
let globexScope: string;
let alice: Actor, alice2: Actor, backend: Actor;
/** The clock of the sidecar and both brokers: the expiry test moves it to a token's exp instead of waiting. */
const clock = new SteppedClock();

beforeAll(async () => {
  [sys, redis] = await Promise.all([startSystem({ sidecar: { clock: clock.date }, brokerOptions: { clock } }), startRedis()]);
  redisBroker = await startTestBroker(sys.side.url, sys.side.brokerToken, { redisUrl: redis.url }, { clock });
  ({ api } = await createProject(sys.sg, 'internals'));
  acmeScope = (await api.scopes.create({ slug: 'acme-corp', name: 'Acme' })).accessScopeId;
  globexScope = (await api.scopes.create({ slug: 'globex', name: 'Globex' })).accessScopeId;
  app = await api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
  other = await api.apps.create({ slug: 'other', name: 'Other', mode: 'open' });
  alice = await createActor(api, 'alice', acmeScope, [app.appId, other.appId]);
  alice2 = await createActor(api, 'alice-2', acmeScope, [app.appId, other.appId]);
  backend = await createActor(api, 'backend', null, [app.appId]);
}, 30_000);
afterAll(async () => {
  await redisBroker?.close();
  await sys?.close();
  await redis?.stop();
});

const modes = () => [
  { mode: 'in-memory', url: sys.url },
  { mode: 'Redis', url: redisBroker.url },
];
const open = (url: string, a: Actor, options = {}) => connect(url, a.actorId, a.token, options);
/** Closes the socket without DISCONNECT, as a device that loses power does (its will is due). */
const drop = (c: TestClient) => c.client.stream.destroy();
let n = 0;
/** A session on a raw socket (CONNACK 0 awaited), for writing packets in one TCP write. */
function rawSession(port: number, a: Actor, clientId: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ port, host: '127.0.0.1' }, () => {
      socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 60, username: a.actorId, password: Buffer.from(a.token) }));
    });
    socket.once('data', (d) => (d[0] === 0x20 && d[3] === 0 ? resolve(socket) : reject(new Error(`no CONNACK 0: ${d.toString('hex')}`))));
    socket.once('error', reject);
  });
}
const uniq = (s: string) => `${s}-${++n}`;

describe('version check (checkAedesVersions)', () => {
  it('accepts the installed versions and refuses any other clearly', () => {
    expect(SUPPORTED_VERSIONS.aedes).toContain(installedVersion('aedes'));
    expect(SUPPORTED_VERSIONS['aedes-persistence-redis']).toContain(installedVersion('aedes-persistence-redis'));
    expect(() => checkAedesVersions(true)).not.toThrow();
    expect(() => checkAedesVersions(false, () => '2.0.0')).toThrow(UnsupportedAedesVersionError);
    expect(() => checkAedesVersions(false, () => '2.0.0')).toThrow(/aedes 2\.0\.0 is installed.*broker\/aedes-internals\.ts/);
    const redisMismatch = (pkg: string) => (pkg === 'aedes' ? SUPPORTED_VERSIONS.aedes[0]! : '12.0.0');
    expect(() => checkAedesVersions(false, redisMismatch)).not.toThrow();
    expect(() => checkAedesVersions(true, redisMismatch)).toThrow(/aedes-persistence-redis 12\.0\.0/);
  });
});

describe.each([0, 1])('touch points (%#: in-memory, Redis)', (i) => {
  const url = () => modes()[i]!.url;

  it('connectPacketOf: the client id is per actor (no takeover) and the will topic is rewritten at CONNECT', async () => {
    const clientId = uniq('same-id');
    const topic = uniq('status');
    const be = await open(url(), backend);
    const a2 = await open(url(), alice2);
    await be.subscribe(`my-app/#`, 1);
    await a2.subscribe(`my-app/${topic}`, 1);
    const a = await open(url(), alice, { clientId, will: { topic: `my-app/${topic}`, payload: Buffer.from('gone'), qos: 1, retain: false } });
    // Another actor with the same client id does not take alice's session over.
    const b = await connect(url(), backend.actorId, backend.token, { clientId });
    drop(a);
    expect(await a2.next((m) => m.payload === 'gone')).toMatchObject({ topic: `my-app/${topic}` });
    expect(await be.next((m) => m.payload === 'gone')).toMatchObject({ topic: `my-app/acme-corp/${topic}` });
    expect(b.client.connected).toBe(true);
    await Promise.all([be.end(), a2.end(), b.end()]);
  });

  it('forgetCredentials: the CONNECT packet the connection keeps holds no credentials once decided', async () => {
    const clientId = uniq('creds');
    const broker = i === 0 ? sys.broker.broker : redisBroker.broker;
    const registered = new Promise<import('aedes').Client>((resolve) => {
      const onReady = (c: import('aedes').Client) => {
        if (c.id !== `${alice.actorId}/${clientId}`) return;
        broker.aedes.off('clientReady', onReady);
        resolve(c);
      };
      broker.aedes.on('clientReady', onReady);
    });
    const a = await open(url(), alice, { clientId });
    // mqtt-packet's parser keeps the CONNECT packet as its settings for as long as the connection lives.
    const kept = ((await registered) as unknown as { _parser: { settings: Record<string, unknown> } })._parser.settings;
    expect(kept.clientId).toBe(`${alice.actorId}/${clientId}`);
    expect(kept.password).toBeUndefined();
    expect(kept.username).toBeUndefined();
    await a.end();
  });

  it('incomingPacketTap: UNSUBSCRIBE with the client’s own filter removes the subscription', async () => {
    const c = await open(url(), alice);
    const p = await open(url(), alice2);
    await c.subscribe(['my-app/tap/x', 'my-app/tap/sentinel']);
    await c.client.unsubscribeAsync('my-app/tap/x');
    await p.publish('my-app/tap/x', 'after unsubscribe', { qos: 1 });
    await p.publish('my-app/tap/sentinel', 'sentinel', { qos: 1 });
    await c.next((m) => m.payload === 'sentinel');
    expect(c.messages.map((m) => m.payload)).toEqual(['sentinel']);
    await Promise.all([c.end(), p.end()]);
  });

  it('subscriptionQos: a forwarded message has min(published QoS, subscribed QoS)', async () => {
    const c = await open(url(), alice);
    const p = await open(url(), alice2);
    expect(await c.subscribe('my-app/qos/0', 0)).toEqual([0]);
    expect(await c.subscribe('my-app/qos/1', 1)).toEqual([1]);
    expect(await c.subscribe('my-app/qos/2', 2)).toEqual([2]);
    for (const sub of [0, 1, 2]) for (const pub of [0, 1, 2] as const) await p.publish(`my-app/qos/${sub}`, `${sub}:${pub}`, { qos: pub });
    await c.next((m) => m.payload === '2:2');
    const got = Object.fromEntries(c.messages.map((m) => [m.payload, m.qos]));
    expect(got).toEqual({ '0:0': 0, '0:1': 0, '0:2': 0, '1:0': 0, '1:1': 1, '1:2': 1, '2:0': 0, '2:1': 1, '2:2': 2 });
    await Promise.all([c.end(), p.end()]);
  });

  it('subscriptionsOf + removeStoredSubscriptions: a subscription dropped by policy is not restored with the session', async () => {
    const clientId = uniq('persist');
    const c = await open(url(), alice, { clientId, clean: false });
    // One filter per SUBSCRIBE: a persistent session's SUBSCRIBE with two filters hangs in Redis mode
    // (issue 9, handled separately).
    await c.subscribe('other/feed', 1);
    await c.subscribe('my-app/feed', 1);
    await api.apps.revoke(other.appId, alice.actorId);
    // Dropped live: a message published after the revocation does not arrive, the sentinel does.
    const p = await open(url(), alice2);
    await expect.poll(async () => {
      await p.publish('other/feed', 'probe', { qos: 1 });
      await p.publish('my-app/feed', 'probe-sentinel', { qos: 1 });
      await c.next((m) => m.payload === 'probe-sentinel');
      const last = c.messages.at(-2);
      c.messages.length = 0;
      return last?.topic;
    }, { timeout: 3_000, interval: 50 }).not.toBe('other/feed');
    await c.end();
    // Granted again while offline: the stored session must not bring the dropped subscription back.
    await api.apps.grant(other.appId, alice.actorId);
    const again = await open(url(), alice, { clientId, clean: false });
    await p.publish('other/feed', 'must not arrive', { qos: 1 });
    await p.publish('my-app/feed', 'sentinel', { qos: 1 });
    await again.next((m) => m.payload === 'sentinel');
    expect(again.messages.map((m) => m.payload)).not.toContain('must not arrive');
    await Promise.all([again.end(), p.end()]);
    // Clean up the stored session for the other tests.
    await (await open(url(), alice, { clientId, clean: true })).end();
  });

  it('discardWill: a revoked session’s will is not published', async () => {
    const actor = await createActor(api, uniq('revoked'), acmeScope, [app.appId]);
    const topic = uniq('will');
    const w = await open(url(), alice2);
    await w.subscribe([`my-app/${topic}`, 'my-app/sentinel'], 1);
    const c = await open(url(), actor, { will: { topic: `my-app/${topic}`, payload: Buffer.from('will'), qos: 1, retain: false } });
    await api.actors.update(actor.actorId, { disabled: true });
    await c.closed;
    await w.publish('my-app/sentinel', 'sentinel', { qos: 1 });
    await w.next((m) => m.payload === 'sentinel');
    expect(w.messages.map((m) => m.payload)).toEqual(['sentinel']);
    await w.end();
  });

  it('discardWill: an expired session’s will is not published', async () => {
    const topic = uniq('will');
    const w = await open(url(), alice2);
    await w.subscribe([`my-app/${topic}`, 'my-app/sentinel2'], 1);
    const { token, expiresAt } = await api.actors.issueToken(alice.actorId, { ttlSeconds: 60 });
    const c = await connect(url(), alice.actorId, token, { will: { topic: `my-app/${topic}`, payload: Buffer.from('will'), qos: 1, retain: false } });
    clock.advance(Date.parse(expiresAt) - clock.now());
    await closedWithin(c);
    await w.publish('my-app/sentinel2', 'sentinel', { qos: 1 });
    await w.next((m) => m.payload === 'sentinel');
    expect(w.messages.map((m) => m.payload)).toEqual(['sentinel']);
    await w.end();
  });

  it('isOwnWill + setWillTopic: a moved actor’s will is published in its new namespace', async () => {
    const actor = await createActor(api, uniq('mover'), acmeScope, [app.appId]);
    const topic = uniq('lwt');
    const be = await open(url(), backend);
    await be.subscribe('my-app/#', 1);
    const c = await open(url(), actor, { will: { topic: `my-app/${topic}`, payload: Buffer.from('moved will'), qos: 1, retain: false } });
    await api.actors.update(actor.actorId, { accessScopeId: globexScope });
    // The move has reached the session once its publishes land in the new namespace.
    await expect.poll(async () => {
      await c.publish('my-app/probe', 'probe', { qos: 1 });
      return (await be.next((m) => m.payload === 'probe' && m.topic.startsWith('my-app/globex/'), 200).catch(() => null)) !== null;
    }, { timeout: 3_000, interval: 20 }).toBe(true);
    drop(c);
    expect(await be.next((m) => m.payload === 'moved will')).toMatchObject({ topic: `my-app/globex/${topic}` });
    await be.end();
  });

  it('tolerateUnknownPubrec: a persistent QoS 2 subscriber of a retained QoS 2 message stays connected', async () => {
    const topic = `my-app/${uniq('retained2')}`;
    const p = await open(url(), alice2);
    await p.publish(topic, 'retained', { qos: 2, retain: true });
    const c = await open(url(), alice, { clientId: uniq('sub2'), clean: false });
    await c.subscribe(topic, 2);
    await c.subscribe('my-app/after2', 2);
    expect(await c.next((m) => m.payload === 'retained')).toMatchObject({ topic, qos: 2, retain: true });
    await p.publish('my-app/after2', 'after', { qos: 2 });
    expect(await c.next((m) => m.payload === 'after')).toMatchObject({ qos: 2 });
    expect(c.client.connected).toBe(true);
    await p.publish(topic, '', { qos: 0, retain: true });
    await Promise.all([c.end(), p.end()]);
  });

  it('rememberStoredTopic + keepStoredTopicsInternal: a queue replays in the replaying session’s view, not the live subscriber’s', async () => {
    const topic = uniq('queued');
    const offline = await open(url(), backend, { clientId: uniq('offline'), clean: false });
    await offline.subscribe('my-app/#', 1);
    await offline.end();
    const live = await open(url(), alice, { clientId: uniq('live'), clean: false });
    await live.subscribe('my-app/#', 1);
    await live.publish(`my-app/${topic}`, 'queued', { qos: 1 });
    expect(await live.next((m) => m.payload === 'queued')).toMatchObject({ topic: `my-app/${topic}` });
    const back = await open(url(), backend, { clientId: offline.client.options.clientId, clean: false });
    expect(await back.next((m) => m.payload === 'queued')).toMatchObject({ topic: `my-app/acme-corp/${topic}` });
    await Promise.all([live.end(), back.end()]);
  });

  it('adaptRetainedStreams: a retained message is delivered on SUBSCRIBE in the subscriber’s view only', async () => {
    const topic = uniq('ret');
    const p = await open(url(), alice2);
    await p.publish(`my-app/${topic}`, 'kept', { qos: 1, retain: true });
    const c = await open(url(), alice);
    const be = await open(url(), backend);
    await c.subscribe(`my-app/${topic}`, 1);
    await be.subscribe(`my-app/+/${topic}`, 1);
    expect(await c.next((m) => m.payload === 'kept')).toMatchObject({ topic: `my-app/${topic}`, retain: true });
    expect(await be.next((m) => m.payload === 'kept')).toMatchObject({ topic: `my-app/acme-corp/${topic}`, retain: true });
    await p.publish(`my-app/${topic}`, '', { qos: 1, retain: true });
    await Promise.all([c.end(), p.end(), be.end()]);
  });
});

describe('boundEmitterRecursion', () => {
  it('one TCP write of 50,000 PUBLISHes to a topic nobody subscribes does not end the broker; deliveries around it keep their order', async () => {
    const sub = await open(sys.url, alice);
    await sub.subscribe('my-app/backlog', 0);
    const publish = (topic: string, payload: string) => mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 0, retain: false, dup: false });
    // 300 to the subscribed topic fill the emitter's 100 slots and queue; 50,000 that match nobody queue behind
    // them, then 300 more that match. Before the fix the run of unmatched ones recursed once per message.
    const chunk = Buffer.concat([
      ...Array.from({ length: 300 }, (_, i) => publish('my-app/backlog', `a${i}`)),
      ...Array.from({ length: 50_000 }, () => publish('my-app/nobody', '-')),
      ...Array.from({ length: 300 }, (_, i) => publish('my-app/backlog', `b${i}`)),
    ]);
    const raw = await rawSession(sys.broker.broker.tcpPort, alice2, uniq('flood'));
    raw.write(chunk);
    await sub.next((m) => m.payload === 'b299', 20_000);
    raw.destroy();
    const expected = [...Array.from({ length: 300 }, (_, i) => `a${i}`), ...Array.from({ length: 300 }, (_, i) => `b${i}`)];
    expect(sub.messages.filter((m) => m.topic === 'my-app/backlog').map((m) => m.payload)).toEqual(expected);
    // The broker is still there for everyone else.
    const probe = await open(sys.url, backend);
    await probe.subscribe('my-app/probe', 0);
    await probe.publish('my-app/probe', 'alive');
    expect((await probe.next((m) => m.topic === 'my-app/probe')).payload).toBe('alive');
    await Promise.all([sub.end(), probe.end()]);
  });
});

describe('outgoingBytes with gathered writes', () => {
  it("counts what the network has not taken from earlier turns, not what this turn gathered", async () => {
    const { Writable } = await import('node:stream');
    const { neverWaitForDrain, outgoingBytes } = await import('../broker/aedes-internals.ts');
    const chunk = 'x'.repeat(10_240);
    // A reader that takes everything at once, and one that never takes anything.
    const fast = new Writable({ writev: (_chunks, cb) => cb(), write: (_c, _e, cb) => cb() });
    const stuck = new Writable({ writev: () => undefined, write: () => undefined });
    for (const conn of [fast, stuck]) neverWaitForDrain(conn);
    const client = (conn: unknown) => ({ conn }) as never;
    // One turn: 100 deliveries of 10 KiB to each (over the default 1 MiB bound), none of them sent yet.
    for (let i = 0; i < 100; i++) {
      fast.write(chunk);
      stuck.write(chunk);
    }
    expect(outgoingBytes(client(fast))).toBe(0);
    expect(outgoingBytes(client(stuck))).toBe(0);
    await new Promise((r) => setImmediate(r));
    // The next turn: the fast reader took it all; the stuck one still holds it, and is seen as full.
    fast.write(chunk);
    stuck.write(chunk);
    expect(outgoingBytes(client(fast))).toBe(0);
    expect(outgoingBytes(client(stuck))).toBe(100 * 10_240);
  });
});

describe('packetSizeLimit', () => {
  it('a PUBLISH declaring more than MQTT_MAX_PACKET_BYTES closes the connection as soon as its header is read; others are unaffected', async () => {
    const raw = await rawSession(sys.broker.broker.tcpPort, alice2, uniq('huge'));
    const closed = new Promise<void>((r) => raw.once('close', () => r()));
    // A PUBLISH header declaring 64 MiB of remaining length (0xff 0xff 0xff 0x1f), and only a few bytes of
    // it: the broker must not wait for (or buffer) the rest before refusing it.
    raw.write(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x1f, 0x00, 0x03, 0x61, 0x2f, 0x62]));
    await closed;
    expect(raw.destroyed).toBe(true);
    const probe = await open(sys.url, backend);
    await probe.subscribe('my-app/after-huge', 0);
    await probe.publish('my-app/after-huge', 'fine');
    expect((await probe.next((m) => m.topic === 'my-app/after-huge')).payload).toBe('fine');
    await probe.end();
  });
});

describe('neverWaitForDrain', () => {
  it('writes of one loop turn leave in one writev; a full buffer never makes a write report back-pressure', async () => {
    const { Writable } = await import('node:stream');
    const { neverWaitForDrain } = await import('../broker/aedes-internals.ts');
    const batches: string[][] = [];
    const conn = new Writable({
      highWaterMark: 4,
      write(chunk, _enc, cb) {
        batches.push([String(chunk)]);
        cb();
      },
      writev(chunks, cb) {
        batches.push(chunks.map((c) => String(c.chunk)));
        cb();
      },
    });
    neverWaitForDrain(conn);
    // Every write is over the 4-byte high-water mark; Aedes would wait for 'drain' if one returned false.
    expect(['first', 'second', 'third'].map((s) => conn.write(s))).toEqual([true, true, true]);
    await new Promise((r) => setImmediate(r));
    conn.write('next turn');
    await new Promise((r) => setImmediate(r));
    expect(batches).toEqual([['first', 'second', 'third'], ['next turn']]);
  });
});

describe('remoteAddressOf', () => {
  it('gives a TCP client’s address (the per-address login throttle keys on it)', async () => {
    const { remoteAddressOf } = await import('../broker/aedes-internals.ts');
    const seen = new Promise<string | undefined>((resolve) => sys.broker.broker.aedes.once('clientReady', (c) => resolve(remoteAddressOf(c))));
    const c = await open(sys.url, alice);
    expect(await seen).toMatch(/127\.0\.0\.1$/);
    await c.end();
  });

  it('reads a TCP peer without leaving Node’s cached answer on the socket (memory of every held connection)', async () => {
    const { remoteAddressOf } = await import('../broker/aedes-internals.ts');
    const seen = new Promise<{ address: string | undefined; cached: unknown }>((resolve) =>
      sys.broker.broker.aedes.once('clientReady', (c) => {
        const address = remoteAddressOf(c);
        resolve({ address, cached: (c.conn as { _peername?: unknown })._peername });
      }),
    );
    const c = await open(sys.url, alice);
    const { address, cached } = await seen;
    expect(address).toMatch(/127\.0\.0\.1$/);
    expect(cached).toBeUndefined();
    await c.end();
  });

  it('handleWithAddress: a WebSocket client carries its peer address (x-forwarded-for only from a trusted proxy)', async () => {
    const { remoteAddressOf } = await import('../broker/aedes-internals.ts');
    const seen = new Promise<string | undefined>((resolve) => sys.broker.broker.aedes.once('clientReady', (c) => resolve(remoteAddressOf(c))));
    const c = await open(sys.broker.wsUrl, alice, { wsOptions: { headers: { 'x-forwarded-for': '203.0.113.9' } } });
    expect(await seen).toBe('127.0.0.1');
    await c.end();
  });
});
