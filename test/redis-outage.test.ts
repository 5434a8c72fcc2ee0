/**
 * Issue 9 test (a): one Redis (AOF, fsync always) SIGKILLed and restarted under load, with real processes:
 * two sidecars, two brokers (broker A → sidecar A, broker B → sidecar B), 200 MQTT clients in 10 scopes
 * publishing QoS 1 through both brokers. Checked from what users see: no process exits, /readyz follows the
 * outage on all four, a new CONNECT gets CONNACK 3 while Redis is down, every PUBACKed message reaches its
 * own scope's subscribers on both brokers (0 lost, 0 cross-scope), and afterwards — without a restart —
 * retained messages, a persistent session's queue, a will and the sidecar change stream work again.
 */
import type { MqttClient } from 'mqtt';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { ScopeGateClient } from '../client/index.ts';
import { Cleanup, http, mapLimit, pollUntil, sleep, startAll } from './helpers/faults.ts';
import { connackCode, connect } from './helpers/mqtt.ts';
import { startBrokerProcess, startSidecarProcess } from './helpers/processes.ts';
import { startRedis } from './helpers/redis-server.ts';
import { createActor, createProject } from './helpers/system.ts';

const ADMIN = 'outage-admin-token-0123456789abcdef';
const BROKER = 'outage-broker-token-0123456789abcdef';
const SCOPES = 10;
const PUBLISHERS_PER_SCOPE = 18; // + one subscriber on each broker = 20 clients per scope, 200 in all
const PUBLISH_EVERY_MS = 250;

type Proc = { child: { exitCode: number | null; signalCode: NodeJS.Signals | null }; lines: Array<Record<string, unknown>> };

describe('Redis SIGKILLed and restarted under QoS 1 load (two brokers, two sidecars)', () => {
  const cleanup = new Cleanup();
  afterAll(() => cleanup.run(), 60_000);

  it('keeps every process up, follows the outage in /readyz, loses no PUBACKed message and resumes without restarts', { timeout: 180_000 }, async () => {
    const redis = cleanup.add(await startRedis({ appendonly: true, appendfsync: 'always' }));
    const env = { REDIS_URL: redis.url, AUTHZ_ADMIN_TOKEN: ADMIN, BROKER_TOKEN: BROKER, LOG_LEVEL: 'info' };
    const [sidecarA, sidecarB] = await startAll(cleanup, [startSidecarProcess(env), startSidecarProcess(env)]);
    const [brokerA, brokerB] = await startAll(cleanup, [startBrokerProcess({ ...env, SIDECAR_URL: sidecarA!.url }), startBrokerProcess({ ...env, SIDECAR_URL: sidecarB!.url })]);
    const brokers = [brokerA!, brokerB!];
    const processes: Proc[] = [sidecarA!, sidecarB!, ...brokers];
    const readyUrls = [`${sidecarA!.url}/readyz`, `${sidecarB!.url}/readyz`, ...brokers.map((b) => `http://127.0.0.1:${b.metricsPort}/readyz`)];

    const sg = new ScopeGateClient({ baseUrl: sidecarA!.url, token: ADMIN });
    const { api } = await createProject(sg, 'outage');
    const app = await api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
    const scopeIds = await mapLimit(Array.from({ length: SCOPES }, (_, i) => i), 4, async (i) => (await api.scopes.create({ slug: `s${i}`, name: `s${i}` })).accessScopeId);
    const pubActors = await mapLimit(scopeIds, 4, (id, i) => createActor(api, `pub-${i}`, id, [app.appId]));
    const subActors = await mapLimit(scopeIds, 4, (id, i) => createActor(api, `sub-${i}`, id, [app.appId]));

    // Subscribers: one per scope on each broker, clean sessions that must survive the outage connected.
    const received: Array<Array<Set<string>>> = scopeIds.map(() => brokers.map(() => new Set<string>()));
    const crossScope: string[] = [];
    const subscribers = await mapLimit(scopeIds.flatMap((_, s) => brokers.map((_, b) => [s, b] as const)), 10, async ([s, b]) => {
      const c = await connect(brokers[b]!.url, subActors[s]!.actorId, subActors[s]!.token, { keepalive: 60 });
      cleanup.defer(() => c.end());
      c.client.on('message', (_topic, payload) => {
        const text = payload.toString();
        if (!text.startsWith(`s${s}:`)) crossScope.push(`${text} at scope ${s}`);
        received[s]![b]!.add(text);
      });
      expect(await c.subscribe('my-app/load', 1)).toEqual([1]);
      return c;
    });

    // Before the outage: a retained message and a persistent session with a subscription (then offline).
    const keeper = await connect(brokerA!.url, subActors[0]!.actorId, subActors[0]!.token, { clean: false, clientId: 'keeper' });
    expect(await keeper.subscribe('my-app/queue', 1)).toEqual([1]);
    await keeper.end();
    const retainer = await connect(brokerB!.url, pubActors[0]!.actorId, pubActors[0]!.token);
    await retainer.publish('my-app/state', 'before-outage', { qos: 1, retain: true });
    await retainer.end();

    // Publishers: 18 per scope, alternating brokers, each publishing QoS 1 every 250 ms and reconnecting
    // (mqtt.js re-sends unacknowledged QoS 1 messages after a reconnect).
    const acked: Array<Set<string>> = scopeIds.map(() => new Set());
    let publishing = true;
    const publishers: MqttClient[] = [];
    const loops = Array.from({ length: SCOPES * PUBLISHERS_PER_SCOPE }, (_, i) => i).map(async (i) => {
      const s = i % SCOPES;
      const broker = brokers[i % 2]!;
      const client = mqtt.connect(broker.url, { protocolVersion: 4, username: pubActors[s]!.actorId, password: pubActors[s]!.token, clientId: `pub-${i}`, reconnectPeriod: 300, connectTimeout: 5_000, keepalive: 60 });
      client.on('error', () => undefined);
      publishers.push(client);
      const pending: Array<Promise<void>> = [];
      for (let n = 0; publishing; n++) {
        const text = `s${s}:${i}:${n}`;
        pending.push(client.publishAsync('my-app/load', text, { qos: 1 }).then(() => void acked[s]!.add(text), () => undefined));
        await sleep(PUBLISH_EVERY_MS);
      }
      // Let the last messages be acknowledged (or not) before counting.
      await Promise.race([Promise.all(pending), sleep(15_000)]);
    });

    await pollUntil(() => acked.every((a) => a.size > 20), 30_000);
    const ackedBefore = acked.reduce((n, a) => n + a.size, 0);

    // --- outage ---
    await redis.kill();
    const killedAt = Date.now();
    const allDown = await pollUntil(async () => (await Promise.all(readyUrls.map((u) => http('GET', u, null, undefined, 2_000)))).every((r) => r.status === 503), 15_000, 100);
    expect(allDown, 'every /readyz answers 503 while Redis is down').toBe(true);
    expect(await connackCode(brokerA!.url, pubActors[1]!.actorId, pubActors[1]!.token, { clientId: 'late-comer' })).toBe(3);
    expect(await connackCode(brokerB!.url, pubActors[1]!.actorId, pubActors[1]!.token, { clientId: 'late-comer' })).toBe(3);
    await sleep(Math.max(0, 3_000 - (Date.now() - killedAt)));
    for (const p of processes) expect(p.child.exitCode ?? p.child.signalCode).toBeNull();

    // --- back ---
    await redis.restart();
    const restartedAt = Date.now();
    const allUp = await pollUntil(async () => (await Promise.all(readyUrls.map((u) => http('GET', u, null, undefined, 2_000)))).every((r) => r.status === 200), 15_000, 50);
    const readyAfterMs = Date.now() - restartedAt;
    expect(allUp, 'every /readyz answers 200 again without a restart').toBe(true);
    const ackedAtRestart = acked.reduce((n, a) => n + a.size, 0);
    await pollUntil(() => acked.reduce((n, a) => n + a.size, 0) > ackedAtRestart + 500, 30_000);
    publishing = false;
    await Promise.all(loops);

    // Every PUBACKed message reaches both subscribers of its scope.
    const missing = () => scopeIds.flatMap((_, s) => brokers.flatMap((_, b) => [...acked[s]!].filter((t) => !received[s]![b]!.has(t)).map((t) => `${t} not at broker ${b}`)));
    await pollUntil(() => missing().length === 0, 15_000, 200);
    const lost = missing();
    const total = acked.reduce((n, a) => n + a.size, 0);

    // Persistent session, retained message, will and the sidecar change stream after the restart.
    const pub = await connect(brokerB!.url, pubActors[0]!.actorId, pubActors[0]!.token);
    await pub.publish('my-app/queue', 'queued-after-restart', { qos: 1 });
    await pub.end();
    const back = await connect(brokerB!.url, subActors[0]!.actorId, subActors[0]!.token, { clean: false, clientId: 'keeper' });
    cleanup.defer(() => back.end());
    await back.next((m) => m.payload === 'queued-after-restart', 5_000);
    expect(await back.subscribe('my-app/state', 1)).toEqual([1]);
    expect((await back.next((m) => m.topic === 'my-app/state', 5_000)).payload).toBe('before-outage');

    const willWatcher = subscribers[2]!; // scope 1 on broker A
    const willer = await connect(brokerB!.url, pubActors[1]!.actorId, pubActors[1]!.token, { will: { topic: 'my-app/load', payload: Buffer.from('s1:will'), qos: 1, retain: false } });
    willer.client.stream.destroy();
    await willWatcher.next((m) => m.payload === 's1:will', 5_000);

    const victim = await createActor(api, 'victim', scopeIds[3]!, [app.appId]);
    const v = await connect(brokerB!.url, victim.actorId, victim.token);
    await api.actors.update(victim.actorId, { disabled: true }); // written on sidecar A; broker B hears through sidecar B
    const closed = await Promise.race([v.closed.then(() => true), sleep(5_000).then(() => false)]);
    expect(closed, 'a write on sidecar A after the restart closes the session on broker B').toBe(true);

    for (const p of processes) expect(p.child.exitCode ?? p.child.signalCode).toBeNull();
    // One "unreachable" line per connection per outage, not one per command.
    const outageLines = processes.map((p) => p.lines.filter((l) => String(l.msg).startsWith('redis unreachable')).length);
    console.log(`[redis outage] ${publishers.length} publishers + ${subscribers.length} subscribers in ${SCOPES} scopes; PUBACKed ${ackedBefore} before the kill, ${total} in all; lost ${lost.length}; cross-scope ${crossScope.length}; all /readyz 200 ${readyAfterMs} ms after redis-server answered; 'redis unreachable' lines per process ${JSON.stringify(outageLines)}`);
    expect(lost.slice(0, 10)).toEqual([]);
    expect(crossScope.slice(0, 10)).toEqual([]);
    for (const n of outageLines) expect(n).toBeLessThanOrEqual(3);
    await Promise.all(publishers.map((c) => c.endAsync(true)));
  });
});
