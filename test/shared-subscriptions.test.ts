/**
 * Shared subscriptions `$share/<group>/<filter>` over real MQTT: round robin inside a group, groups
 * namespaced by scope (same group name in two tenants = two groups), offline persistent members skipped,
 * UNSUBSCRIBE and session restore, refused shapes, mosquitto_sub as it is, and two brokers on one Redis
 * (exactly one member cluster-wide).
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type TestClient } from './helpers/mqtt.ts';
import { startRedis, type RedisHandle } from './helpers/redis-server.ts';
import { createActor, createProject, startSystem, startTestBroker, type TestBroker, type TestSystem } from './helpers/system.ts';

let sys: TestSystem;
beforeAll(async () => {
  sys = await startSystem();
});
afterAll(() => sys?.close());

/** Two tenants' scopes in one project, an open `agents` app, and a project-level orchestrator. */
async function agentsProject(slug: string) {
  const { api } = await createProject(sys.sg, slug);
  const acme = await api.scopes.create({ slug: 'acme', name: 'Acme' });
  const beta = await api.scopes.create({ slug: 'beta', name: 'Beta' });
  const app = await api.apps.create({ slug: 'agents', name: 'Agents', mode: 'open' });
  const actor = (name: string, scope: string | null) => createActor(api, name, scope, [app.appId]);
  return { api, acme, beta, app, actor };
}

/** Publishes `n` QoS 1 tasks, then a sentinel the whole group must see once (it ends the count). */
async function dispatch(from: TestClient, topic: string, n: number, tag: string) {
  for (let i = 0; i < n; i++) await from.publish(topic, `${tag}-${i}`, { qos: 1 });
}
const payloads = (c: TestClient, tag: string) => c.messages.map((m) => m.payload).filter((p) => p.startsWith(`${tag}-`));

describe('shared subscriptions on one broker', () => {
  it('round robin inside a group; the same group name in another tenant is another group', async () => {
    const { actor, acme, beta } = await agentsProject('share-rr');
    const [orch, w1, w2, w3, b1, observer] = await Promise.all([
      actor('orchestrator', acme.accessScopeId),
      actor('w1', acme.accessScopeId),
      actor('w2', acme.accessScopeId),
      actor('w3', acme.accessScopeId),
      actor('beta-w', beta.accessScopeId),
      actor('observer', acme.accessScopeId),
    ]);
    const clients = await Promise.all([orch, w1, w2, w3, b1, observer].map((a) => connect(sys.url, a.actorId, a.token)));
    const [o, c1, c2, c3, cb, obs] = clients as [TestClient, TestClient, TestClient, TestClient, TestClient, TestClient];
    try {
      for (const c of [c1, c2, c3, cb]) expect(await c.subscribe('$share/workers/agents/_handoff/dispatch', 1)).toEqual([1]);
      // A plain subscriber of the same topic still gets every message (the group is one more subscriber).
      expect(await obs.subscribe('agents/_handoff/dispatch', 1)).toEqual([1]);
      await dispatch(o, 'agents/_handoff/dispatch', 9, 'task');
      await obs.next((m) => m.payload === 'task-8');
      await expect.poll(() => [c1, c2, c3].reduce((n, c) => n + payloads(c, 'task').length, 0)).toBe(9);
      // Each worker got exactly a third, each task went to exactly one worker, in the worker's own view.
      expect([c1, c2, c3].map((c) => payloads(c, 'task').length)).toEqual([3, 3, 3]);
      expect(new Set([c1, c2, c3].flatMap((c) => payloads(c, 'task'))).size).toBe(9);
      expect([c1, c2, c3].flatMap((c) => c.messages.map((m) => m.topic))).toEqual(Array(9).fill('agents/_handoff/dispatch'));
      expect(c1.messages.every((m) => m.qos === 1)).toBe(true);

      // Beta's group "workers" is its own: Beta's worker got none of Acme's tasks, and gets Beta's own.
      const betaOrch = await actor('beta-orch', beta.accessScopeId);
      const bo = await connect(sys.url, betaOrch.actorId, betaOrch.token);
      try {
        await bo.publish('agents/_handoff/dispatch', 'beta-task', { qos: 1 });
        expect((await cb.next((m) => m.payload === 'beta-task')).topic).toBe('agents/_handoff/dispatch');
        expect(payloads(cb, 'task')).toEqual([]);
        // …and none of Acme's workers got Beta's task (sentinel: the next Acme task arrives after it would have).
        await o.publish('agents/_handoff/dispatch', 'task-sentinel', { qos: 1 });
        await expect.poll(() => [c1, c2, c3].some((c) => c.messages.some((m) => m.payload === 'task-sentinel'))).toBe(true);
        expect([c1, c2, c3].flatMap((c) => c.messages.map((m) => m.payload))).not.toContain('beta-task');
      } finally {
        await bo.end();
      }
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it('a project-level actor joins with the namespace in its filter; its group is not the scoped workers’ group', async () => {
    const { actor, acme } = await agentsProject('share-project');
    const [orch, scoped, global] = await Promise.all([actor('orch', acme.accessScopeId), actor('scoped-w', acme.accessScopeId), actor('global-w', null)]);
    const [o, s, g] = await Promise.all([orch, scoped, global].map((a) => connect(sys.url, a.actorId, a.token))) as [TestClient, TestClient, TestClient];
    try {
      expect(await s.subscribe('$share/workers/agents/jobs', 1)).toEqual([1]);
      expect(await g.subscribe('$share/workers/agents/acme/jobs', 1)).toEqual([1]);
      await dispatch(o, 'agents/jobs', 3, 'job');
      // Two groups (different scopes), so each sees every job, each in its own view.
      await expect.poll(() => payloads(s, 'job').length + payloads(g, 'job').length).toBe(6);
      expect(g.messages[0]!.topic).toBe('agents/acme/jobs');
      expect(s.messages[0]!.topic).toBe('agents/jobs');
    } finally {
      await Promise.all([o, s, g].map((c) => c.end()));
    }
  });

  it('refuses malformed or escaping $share filters with SUBACK 0x80 and keeps the rest of the packet', async () => {
    const { actor, acme } = await agentsProject('share-bad');
    const w = await actor('w', acme.accessScopeId);
    const c = await connect(sys.url, w.actorId, w.token);
    try {
      const bad = ['$share/workers', '$share//agents/x', '$share/+/agents/x', '$share/g/#', '$share/g/+/x', '$share/g/other-app/x', '$share/g/$SYS/x', '$share/g/agents/../x'];
      const granted = await c.subscribe([...bad, '$share/g/agents/ok'], 0);
      expect(granted).toEqual([...bad.map(() => 128), 0]);
    } finally {
      await c.end();
    }
  });

  it('UNSUBSCRIBE leaves the group; an offline persistent member is skipped, and gets QoS 1 only when nobody else is there', async () => {
    const { actor, acme } = await agentsProject('share-offline');
    const [orch, w1, w2] = await Promise.all([actor('orch', acme.accessScopeId), actor('w1', acme.accessScopeId), actor('w2', acme.accessScopeId)]);
    const o = await connect(sys.url, orch.actorId, orch.token);
    const persistent = { clientId: 'worker-p', clean: false };
    let p = await connect(sys.url, w1.actorId, w1.token, persistent);
    const q = await connect(sys.url, w2.actorId, w2.token);
    try {
      expect(await p.subscribe('$share/pool/agents/tasks', 1)).toEqual([1]);
      expect(await q.subscribe('$share/pool/agents/tasks', 1)).toEqual([1]);
      await p.end();
      // p is offline with a persistent session: every task goes to q.
      await dispatch(o, 'agents/tasks', 4, 'a');
      await expect.poll(() => payloads(q, 'a').length).toBe(4);

      // q unsubscribes: now nobody is connected, so QoS 1 tasks queue for the persistent member.
      await q.client.unsubscribeAsync('$share/pool/agents/tasks');
      await dispatch(o, 'agents/tasks', 3, 'b');
      p = await connect(sys.url, w1.actorId, w1.token, persistent);
      // Restored session: the queued tasks arrive in p's own view, and p is a member again.
      await expect.poll(() => payloads(p, 'b').length).toBe(3);
      expect(p.messages.every((m) => m.topic === 'agents/tasks')).toBe(true);
      expect(payloads(p, 'a')).toEqual([]);
      await dispatch(o, 'agents/tasks', 2, 'c');
      await expect.poll(() => payloads(p, 'c').length).toBe(2);
      expect(payloads(q, 'b').concat(payloads(q, 'c'))).toEqual([]);
    } finally {
      await Promise.all([o.end(), p.end(), q.end()]);
    }
  });

  it('mosquitto_sub -t \'$share/g/<app>/...\' works as it is', async () => {
    const { actor, acme } = await agentsProject('share-mosquitto');
    const [orch, w] = await Promise.all([actor('orch', acme.accessScopeId), actor('w', acme.accessScopeId)]);
    const o = await connect(sys.url, orch.actorId, orch.token);
    const port = new URL(sys.url).port;
    const sub = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', port, '-u', w.actorId, '-P', w.token, '-t', '$share/g/agents/_handoff/dispatch', '-v', '-q', '1']);
    let out = '';
    sub.stdout.on('data', (d) => (out += d));
    try {
      // Publish until the subscriber is in (it needs a moment to connect), then two counted tasks.
      await expect.poll(async () => {
        await o.publish('agents/_handoff/dispatch', 'warmup', { qos: 1 });
        return out.includes('warmup');
      }, { timeout: 5_000, interval: 100 }).toBe(true);
      await o.publish('agents/_handoff/dispatch', 'task-1', { qos: 1 });
      await expect.poll(() => out.includes('task-1')).toBe(true);
      expect(out.trim().split('\n').at(-1)).toBe('agents/_handoff/dispatch task-1');
    } finally {
      sub.kill();
      await o.end();
    }
  });
});

describe('shared subscriptions across two brokers on one Redis', () => {
  let redis: RedisHandle;
  let b1: TestBroker;
  let b2: TestBroker;
  beforeAll(async () => {
    redis = await startRedis();
    b1 = await startTestBroker(sys.side.url, sys.side.brokerToken, { redisUrl: redis.url });
    b2 = await startTestBroker(sys.side.url, sys.side.brokerToken, { redisUrl: redis.url });
  });
  afterAll(async () => {
    await b1?.close();
    await b2?.close();
    await redis?.stop();
  });

  it('each message reaches exactly one member cluster-wide', async () => {
    const { actor, acme } = await agentsProject('share-cluster');
    const [orch, w1, w2, w3, w4] = await Promise.all(['orch', 'w1', 'w2', 'w3', 'w4'].map((n) => actor(n, acme.accessScopeId)));
    const o = await connect(b1.url, orch!.actorId, orch!.token);
    const workers = await Promise.all([w1, w2, w3, w4].map((w, i) => connect(i % 2 === 0 ? b1.url : b2.url, w!.actorId, w!.token)));
    const all = () => workers.flatMap((c) => payloads(c, 'm'));
    try {
      for (const c of workers) expect(await c.subscribe('$share/pool/agents/jobs', 1)).toEqual([1]);
      // The subscriptions are live on both brokers once a warm-up message reaches a member.
      await expect.poll(async () => {
        await o.publish('agents/jobs', 'warmup', { qos: 1 });
        return workers.some((c) => c.messages.length > 0);
      }, { timeout: 5_000, interval: 100 }).toBe(true);
      await dispatch(o, 'agents/jobs', 40, 'm');
      await expect.poll(() => all().length, { timeout: 5_000 }).toBeGreaterThanOrEqual(40);
      // A late duplicate would arrive right behind the others: a sentinel through a plain subscription orders it.
      const sentinel = await connect(b2.url, w1!.actorId, w1!.token);
      await sentinel.subscribe('agents/jobs', 1);
      await o.publish('agents/jobs', 'sentinel', { qos: 1 });
      await sentinel.next((m) => m.payload === 'sentinel');
      await sentinel.end();
      expect(all().length).toBe(40);
      expect(new Set(all()).size).toBe(40);
      // Which broker's members get the work is not promised: the broker that claims a message first delivers it
      // (README, known gaps), and one broker may win every claim. Exactly once is what is asserted above.
    } finally {
      await Promise.all([o, ...workers].map((c) => c.end()));
    }
  });
});
