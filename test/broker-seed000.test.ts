/**
 * Seed 000 over real MQTT: the three patterns (a scope per tenant customer, staging/production, teams) and
 * the agent multi-tenancy example, driven by mqtt.js clients against a real broker and sidecar.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type TestClient } from './helpers/mqtt.ts';
import { createActor, createProject, startSystem, type TestSystem } from './helpers/system.ts';

let sys: TestSystem;
beforeAll(async () => {
  sys = await startSystem();
});
afterAll(() => sys?.close());

describe('pattern 1: one scope per tenant customer', () => {
  it('alice (acme-corp) and bob (globex) share topic names but never each other’s messages; the backend sees both', async () => {
    const { api } = await createProject(sys.sg, 'saas-1');
    const acme = await api.scopes.create({ slug: 'acme-corp', name: 'Acme Corp' });
    const globex = await api.scopes.create({ slug: 'globex', name: 'Globex' });
    const app = await api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
    const alice = await createActor(api, 'user-alice', acme.accessScopeId, [app.appId]);
    const bob = await createActor(api, 'user-bob', globex.accessScopeId, [app.appId]);
    const backend = await createActor(api, 'backend', null, [app.appId]);

    const a = await connect(sys.url, alice.actorId, alice.token);
    const b = await connect(sys.url, bob.actorId, bob.token);
    const be = await connect(sys.url, backend.actorId, backend.token);
    try {
      expect(await a.subscribe('my-app/chat/messages')).toEqual([0]);
      expect(await b.subscribe('my-app/chat/messages')).toEqual([0]);
      expect(await be.subscribe('my-app/+/chat/messages')).toEqual([0]);

      await a.publish('my-app/chat/messages', 'hello from alice');
      expect((await a.next((m) => m.payload === 'hello from alice')).topic).toBe('my-app/chat/messages');
      // The project-level backend sees the namespace level; the project mount is never visible.
      expect((await be.next((m) => m.payload === 'hello from alice')).topic).toBe('my-app/acme-corp/chat/messages');

      // The backend answers into one tenant by naming its namespace.
      await be.publish('my-app/globex/chat/messages', 'to globex');
      // 'to globex' reached b after alice's message was routed (a and be had it): it is b's sentinel.
      expect((await b.next((m) => m.payload === 'to globex')).topic).toBe('my-app/chat/messages');
      expect(b.messages.map((m) => m.payload)).not.toContain('hello from alice');
      // a's sentinel: the backend's next message, into acme; 'to globex' would have come before it.
      await be.publish('my-app/acme-corp/chat/messages', 'sentinel for alice');
      await a.next((m) => m.payload === 'sentinel for alice');
      expect(a.messages.map((m) => m.payload)).not.toContain('to globex');
    } finally {
      await Promise.all([a.end(), b.end(), be.end()]);
    }
  });
});

describe('pattern 2: staging and production', () => {
  it('a tester moved from staging to production follows into production topics within the revocation bound', async () => {
    const { api } = await createProject(sys.sg, 'saas-2');
    const staging = await api.scopes.create({ slug: 'staging', name: 'Staging' });
    const production = await api.scopes.create({ slug: 'production', name: 'Production' });
    const app = await api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
    const tester = await createActor(api, 'tester', staging.accessScopeId, [app.appId]);
    const prodDevice = await createActor(api, 'prod-device', production.accessScopeId, [app.appId]);
    const stagingDevice = await createActor(api, 'staging-device', staging.accessScopeId, [app.appId]);

    const t = await connect(sys.url, tester.actorId, tester.token);
    const p = await connect(sys.url, prodDevice.actorId, prodDevice.token);
    const s = await connect(sys.url, stagingDevice.actorId, stagingDevice.token);
    try {
      await t.subscribe('my-app/events');
      await s.publish('my-app/events', 'staging-1');
      // QoS 1: the PUBACK comes after the broker routed it, so the sentinel below is routed after it.
      await p.publish('my-app/events', 'production-1', { qos: 1 });
      await s.publish('my-app/events', 'sentinel-1');
      await t.next((m) => m.payload === 'sentinel-1');
      expect(t.messages.map((m) => m.payload)).toEqual(['staging-1', 'sentinel-1']);

      await api.actors.update(tester.actorId, { accessScopeId: production.accessScopeId });
      // Re-decided live: the subscription now lives in production.
      await expect.poll(async () => {
        await p.publish('my-app/events', 'production-2');
        return t.messages.some((m) => m.payload === 'production-2');
      }, { timeout: 2_000, interval: 50 }).toBe(true);
      await s.publish('my-app/events', 'staging-2', { qos: 1 });
      await p.publish('my-app/events', 'sentinel-2');
      await t.next((m) => m.payload === 'sentinel-2');
      expect(t.messages.map((m) => m.payload)).not.toContain('staging-2');
      expect(t.messages.every((m) => m.topic === 'my-app/events')).toBe(true);
    } finally {
      await Promise.all([t.end(), p.end(), s.end()]);
    }
  });
});

describe('pattern 3: teams inside a customer (nested scopes)', () => {
  it('team members share the team topic; the customer-level actor sees its teams through the slug path', async () => {
    const { api } = await createProject(sys.sg, 'saas-3');
    const customer = await api.scopes.create({ slug: 'acme-corp', name: 'Acme' });
    const red = await api.scopes.create({ slug: 'red-team', name: 'Red', parentScopeId: customer.accessScopeId });
    const blue = await api.scopes.create({ slug: 'blue-team', name: 'Blue', parentScopeId: customer.accessScopeId });
    const app = await api.apps.create({ slug: 'chat', name: 'Chat', mode: 'open' });
    const r1 = await createActor(api, 'r1', red.accessScopeId, [app.appId]);
    const r2 = await createActor(api, 'r2', red.accessScopeId, [app.appId]);
    const b1 = await createActor(api, 'b1', blue.accessScopeId, [app.appId]);
    const lead = await createActor(api, 'lead', customer.accessScopeId, [app.appId]);

    const [c1, c2, c3, cl] = (await Promise.all([r1, r2, b1, lead].map((x) => connect(sys.url, x.actorId, x.token)))) as [TestClient, TestClient, TestClient, TestClient];
    try {
      await c2.subscribe('chat/room');
      await c3.subscribe('chat/room');
      await cl.subscribe('chat/+/room');
      await c1.publish('chat/room', 'red says hi');
      expect((await c2.next()).topic).toBe('chat/room');
      expect((await cl.next((m) => m.payload === 'red says hi')).topic).toBe('chat/red-team/room');
      // Sentinel: blue's own message comes back to it after red's was routed (c2 and cl had it).
      await c3.publish('chat/room', 'blue sentinel');
      await c3.next((m) => m.payload === 'blue sentinel');
      expect(c3.messages.map((m) => m.payload)).toEqual(['blue sentinel']);
    } finally {
      await Promise.all([c1, c2, c3, cl].map((c) => c.end()));
    }
  });
});

describe('agents: orchestrators and workers per tenant', () => {
  it('_handoff/dispatch and _blackboard/state stay inside the tenant scope', async () => {
    const { api } = await createProject(sys.sg, 'agents');
    const t1 = await api.scopes.create({ slug: 'tenant-1', name: 'T1' });
    const t2 = await api.scopes.create({ slug: 'tenant-2', name: 'T2' });
    const app = await api.apps.create({ slug: 'agents', name: 'Agents', mode: 'open' });
    const orch1 = await createActor(api, 'orchestrator-1', t1.accessScopeId, [app.appId]);
    const worker1 = await createActor(api, 'worker-1', t1.accessScopeId, [app.appId]);
    const worker2 = await createActor(api, 'worker-2', t2.accessScopeId, [app.appId]);
    const [o, w1, w2] = (await Promise.all([orch1, worker1, worker2].map((x) => connect(sys.url, x.actorId, x.token)))) as [TestClient, TestClient, TestClient];
    try {
      await w1.subscribe(['agents/_handoff/dispatch', 'agents/_blackboard/state']);
      await w2.subscribe(['agents/_handoff/dispatch', 'agents/_blackboard/state']);
      await o.publish('agents/_handoff/dispatch', JSON.stringify({ task: 'summarize' }), { qos: 1 });
      await o.publish('agents/_blackboard/state', 'step-1', { retain: true });
      expect((await w1.next((m) => m.topic === 'agents/_handoff/dispatch')).payload).toContain('summarize');
      await w1.next((m) => m.topic === 'agents/_blackboard/state');
      // A late worker of tenant 2 gets no retained blackboard of tenant 1. Sentinel: tenant 2's own retained
      // state, which the same subscription delivers from the same retained lookup.
      await w2.publish('agents/_blackboard/state', 't2-state', { qos: 1, retain: true });
      const late = await connect(sys.url, worker2.actorId, worker2.token, { clientId: 'late' });
      await late.subscribe('agents/#');
      await late.next((m) => m.payload === 't2-state');
      await w2.next((m) => m.payload === 't2-state');
      expect(w2.messages.map((m) => m.payload)).toEqual(['t2-state']);
      expect(late.messages.map((m) => m.payload)).toEqual(['t2-state']);
      await late.end();
    } finally {
      await Promise.all([o.end(), w1.end(), w2.end()]);
    }
  });
});
