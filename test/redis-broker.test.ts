/**
 * The broker in Redis mode, on one redis-server shared by this file: a persistent session subscribing two
 * filters in one packet gets its SUBACK (mosquitto_sub -c -t a -t b), every broker key and pub/sub channel is
 * under REDIS_BROKER_PREFIX, and routing between two brokers over coarse channels delivers exact and wildcard
 * subscriptions correctly (and nothing to another project's wildcard subscribers), and a broker whose Redis
 * subscriber connection dropped gets, once it is back, every QoS 1 message the other broker PUBACKed meanwhile.
 */
import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisPolicyStore, createRedisClient } from '../authz-sidecar/store/redis-policy-store.ts';
import { parseRedisUrl, type RedisTarget } from '../shared/redis-target.ts';
import { connect, receivedBefore } from './helpers/mqtt.ts';
import { startRedis, type RedisHandle } from './helpers/redis-server.ts';
import { createActor, createProject, startSystem, startTestBroker, type TestBroker, type TestSystem } from './helpers/system.ts';

const BROKER_PREFIX = 'other-software:scopegate-broker:';
const STORE_PREFIX = 'other-software:scopegate-authz:';

let redis: RedisHandle;
let system: TestSystem;
let second: TestBroker;
let probe: Redis;

beforeAll(async () => {
  redis = await startRedis();
  const target = parseRedisUrl(redis.url) as RedisTarget;
  const brokerConfig = { redisUrl: redis.url, redis: target, redisBrokerPrefix: BROKER_PREFIX };
  system = await startSystem({ store: new RedisPolicyStore({ redis: createRedisClient(redis.url), prefix: STORE_PREFIX }), broker: brokerConfig });
  second = await startTestBroker(system.side.url, system.side.brokerToken, brokerConfig);
  probe = new Redis(redis.url);
}, 60_000);

afterAll(async () => {
  probe?.disconnect();
  await second?.close();
  await system?.close();
  await redis?.stop();
}, 30_000);

async function fixture(slug: string) {
  const { api } = await createProject(system.sg, slug);
  const app = await api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
  const scope = await api.scopes.create({ slug: 'acme', name: 'Acme' });
  const actor = await createActor(api, `${slug}-actor`, scope.accessScopeId, [app.appId]);
  return { api, app, scope, actor };
}

/** Runs mosquitto_sub until `until` matches its output (or 10 s); returns everything it printed. */
function mosquittoSub(args: string[], until: RegExp, during?: () => Promise<void>): Promise<string> {
  return new Promise((resolve, reject) => {
    // stdbuf: mosquitto_sub's debug lines are block-buffered on a pipe.
    const child = spawn('stdbuf', ['-oL', 'mosquitto_sub', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let started = false;
    const timer = setTimeout(() => finish(), 10_000);
    function finish() {
      clearTimeout(timer);
      child.kill('SIGKILL');
      resolve(out);
    }
    const onData = (d: Buffer) => {
      out += d.toString();
      if (!started && /received SUBACK/.test(out)) {
        started = true;
        if (during) during().catch(reject);
      }
      if (until.test(out)) finish();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', reject);
  });
}

describe('Redis mode broker', () => {
  it('answers a persistent session subscribing two filters in one packet (mosquitto_sub -c -t a -t b)', { timeout: 60_000 }, async () => {
    const { actor } = await fixture('suback');
    const base = ['-h', '127.0.0.1', '-p', String(new URL(system.url).port), '-V', 'mqttv311', '-u', actor.actorId, '-P', actor.token, '-c', '-i', 'two-filters', '-q', '1', '-t', 'my-app/a', '-t', 'my-app/b', '-v', '-d'];
    for (let round = 0; round < 3; round++) {
      const out = await mosquittoSub(base, /my-app\/b from-b-\d/, async () => {
        const p = await connect(second.url, actor.actorId, actor.token);
        await p.publish('my-app/a', `from-a-${round}`, { qos: 1 });
        await p.publish('my-app/b', `from-b-${round}`, { qos: 1 });
        await p.end();
      });
      expect(out, `round ${round}`).toMatch(/received SUBACK/);
      expect(out).toContain(`my-app/a from-a-${round}`);
      expect(out).toContain(`my-app/b from-b-${round}`);
    }
  });

  it('keeps every broker key and pub/sub channel under REDIS_BROKER_PREFIX', { timeout: 60_000 }, async () => {
    const { actor } = await fixture('prefix');
    // A persistent session with a queued message, a retained message and a will: every kind of broker key.
    const keeper = await connect(system.url, actor.actorId, actor.token, { clean: false, clientId: 'keeper' });
    expect(await keeper.subscribe(['my-app/q', 'my-app/+/x'], 1)).toEqual([1, 1]);
    await keeper.end();
    const p = await connect(second.url, actor.actorId, actor.token, { will: { topic: 'my-app/will', payload: Buffer.from('w'), qos: 1, retain: true } });
    await p.publish('my-app/q', 'queued', { qos: 1 });
    await p.publish('my-app/state', 'retained', { qos: 1, retain: true });
    const channels = (await probe.pubsub('CHANNELS', '*')) as string[];
    const keys = await probe.keys('*');
    // The will is stored (retained) before it is delivered: once a subscriber has it, its keys are written.
    const watcher = await connect(system.url, actor.actorId, actor.token);
    expect(await watcher.subscribe('my-app/will', 1)).toEqual([1]);
    p.client.stream.destroy();
    await watcher.next((m) => m.payload === 'w', 5_000);
    await watcher.end();
    const keysAfterWill = await probe.keys('*');

    expect(keys.some((k) => k.startsWith(BROKER_PREFIX))).toBe(true);
    for (const k of new Set([...keys, ...keysAfterWill])) expect(k.startsWith(BROKER_PREFIX) || k.startsWith(STORE_PREFIX), k).toBe(true);
    expect(channels.length).toBeGreaterThan(0);
    for (const c of channels) expect(c.startsWith(BROKER_PREFIX) || c.startsWith(STORE_PREFIX), c).toBe(true);
    expect(channels.some((c) => c.startsWith(BROKER_PREFIX))).toBe(true);
    const patterns = Number(await probe.pubsub("NUMPAT"));
    expect(patterns).toBe(0);

    const back = await connect(system.url, actor.actorId, actor.token, { clean: false, clientId: 'keeper' });
    await back.next((m) => m.payload === 'queued', 5_000);
    await back.end();
  });

  it('routes exact and wildcard subscriptions across two brokers over coarse channels, and nothing to another project', { timeout: 60_000 }, async () => {
    const one = await fixture('route-one');
    const other = await fixture('route-other');
    const exact = await connect(system.url, one.actor.actorId, one.actor.token);
    const plus = await connect(second.url, one.actor.actorId, one.actor.token);
    const hash = await connect(system.url, one.actor.actorId, one.actor.token);
    const foreign = await connect(second.url, other.actor.actorId, other.actor.token);
    expect(await exact.subscribe('my-app/room/1/temp', 1)).toEqual([1]);
    expect(await plus.subscribe('my-app/room/+/temp', 1)).toEqual([1]);
    expect(await hash.subscribe('my-app/#', 1)).toEqual([1]);
    // Many wildcard filters in the other project: routed by its own channel, never matched against ours.
    expect(await foreign.subscribe(Array.from({ length: 200 }, (_, i) => `my-app/w${i}/+/#`), 1)).toEqual(Array(200).fill(1));
    expect(await foreign.subscribe('my-app/#', 1)).toEqual([1]);

    for (const via of [system.url, second.url]) {
      const p = await connect(via, one.actor.actorId, one.actor.token);
      await p.publish('my-app/room/1/temp', `t1 via ${via}`, { qos: 1 });
      await p.publish('my-app/room/2/temp', `t2 via ${via}`, { qos: 1 });
      await p.publish('my-app/other', `o via ${via}`, { qos: 1 });
      await p.publish('my-app/end', `end via ${via}`, { qos: 1 });
      await p.end();
      await hash.next((m) => m.payload === `end via ${via}`, 5_000);
      const fp = await connect(via, other.actor.actorId, other.actor.token);
      await fp.publish('my-app/end', `foreign end via ${via}`, { qos: 1 });
      await fp.end();
      await foreign.next((m) => m.payload === `foreign end via ${via}`, 5_000);
    }
    await plus.next((m) => m.payload === `t2 via ${second.url}`, 5_000);
    const payloads = (c: { messages: Array<{ payload: string }> }) => c.messages.map((m) => m.payload).sort();
    const via = (p: string) => [system.url, second.url].map((u) => `${p} via ${u}`);
    expect(payloads(exact)).toEqual(via('t1').sort());
    expect(payloads(plus)).toEqual([...via('t1'), ...via('t2')].sort());
    expect(payloads(hash)).toEqual([...via('t1'), ...via('t2'), ...via('o'), ...via('end')].sort());
    expect(payloads(foreign)).toEqual(via('foreign end').sort());
    for (const c of [exact, plus, hash, foreign]) await c.end();
  });

  it('replays to a broker whose subscriber connection dropped every QoS 1 message PUBACKed meanwhile, once and in order', { timeout: 60_000 }, async () => {
    const { actor } = await fixture('replay');
    const sub = await connect(second.url, actor.actorId, actor.token);
    expect(await sub.subscribe('my-app/replay', 1)).toEqual([1]);
    const pub = await connect(system.url, actor.actorId, actor.token);
    await pub.publish('my-app/replay', 'before', { qos: 1 });
    await sub.next((m) => m.payload === 'before', 5_000);

    // Every pub/sub connection is dropped (both brokers' route subscribers); they reconnect after ~100 ms.
    // The messages PUBACKed in between reach no subscriber through pub/sub: only the replay can deliver them.
    // Publishing goes on until every pub/sub connection is back, so messages straddle the reconnect.
    const pubsubConnections = async () => String(await probe.call('CLIENT', 'LIST', 'TYPE', 'pubsub')).split('\n').filter((l) => l.trim() !== '').length;
    const connectedBefore = await pubsubConnections();
    await probe.client('KILL', 'TYPE', 'pubsub');
    const sent: string[] = [];
    for (let i = 0; i < 30 || (i < 1_000 && (await pubsubConnections()) < connectedBefore); i++) {
      await pub.publish('my-app/replay', `m${i}`, { qos: 1 });
      sent.push(`m${i}`);
    }
    // The router delivers a channel in log order, a catch-up before what arrived meanwhile: a message
    // delivered twice would be ahead of a sentinel published after all of them.
    const got = (await receivedBefore(sub, pub, 'my-app/replay', 10_000)).map((m) => m.payload);
    expect(got).toEqual(['before', ...sent]);
    await Promise.all([sub.end(), pub.end()]);
  });
});
