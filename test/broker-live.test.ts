/**
 * Live policy: what an admin changes reaches connected sessions (publishes re-decided, subscriptions
 * dropped, sessions closed), tokens expire mid-session, and the broker fails closed while the sidecar is
 * down but keeps decided sessions for the configured grace. Latency is measured by `npm run bench`; these
 * tests check the behaviour, with a generous liveness bound.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryPolicyStore } from '../authz-sidecar/store/memory-policy-store.ts';
import { SteppedClock } from './helpers/clock.ts';
import { closedWithin, connackCode, connect, receivedBefore, type TestClient } from './helpers/mqtt.ts';
import { startSidecar } from './helpers/sidecar.ts';
import { allowTopics, createActor, createProject, startSystem, startTestBroker, type TestSystem } from './helpers/system.ts';

const LIVE = { timeout: 2_000, interval: 20 };
let sys: TestSystem;
beforeAll(async () => {
  sys = await startSystem();
});
afterAll(() => sys?.close());

async function world(slug: string) {
  const { api } = await createProject(sys.sg, slug);
  const scope = await api.scopes.create({ slug: 'acme-corp', name: 'Acme' });
  const app = await api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
  const rbac = await api.apps.create({ slug: 'sensors', name: 'Sensors', mode: 'rbac' });
  const actor = await createActor(api, 'device', scope.accessScopeId, [app.appId, rbac.appId]);
  const peer = await createActor(api, 'peer', scope.accessScopeId, [app.appId, rbac.appId]);
  await allowTopics(sys.side, peer.subjectId, scope.accessScopeId, [['publish', 'sensors/#']]);
  return { api, scope, app, rbac, actor, peer };
}
const isClosed = (c: TestClient) => !c.client.connected;

describe('revocation reaches connected sessions', () => {
  it('disabling the actor closes its sessions', async () => {
    const w = await world('live-disable');
    const c = await connect(sys.url, w.actor.actorId, w.actor.token);
    await w.api.actors.update(w.actor.actorId, { disabled: true });
    await expect.poll(() => isClosed(c), LIVE).toBe(true);
    expect(await connackCode(sys.url, w.actor.actorId, w.actor.token)).toBe(5);
  });

  it('deleting the actor closes its sessions', async () => {
    const w = await world('live-delete');
    const c = await connect(sys.url, w.actor.actorId, w.actor.token);
    await w.api.actors.delete(w.actor.actorId, { cascade: true });
    await expect.poll(() => isClosed(c), LIVE).toBe(true);
  });

  it('removing the app grant drops the subscription and refuses further publishes', async () => {
    const w = await world('live-app');
    // A second app both keep: the path of the sentinel that shows what did not arrive.
    const keep = await w.api.apps.create({ slug: 'keep', name: 'Keep', mode: 'open' });
    for (const a of [w.actor, w.peer]) await w.api.apps.grant(keep.appId, a.actorId);
    const c = await connect(sys.url, w.actor.actorId, w.actor.token);
    const p = await connect(sys.url, w.peer.actorId, w.peer.token);
    expect(await c.subscribe(['my-app/feed', 'keep/sentinel'])).toEqual([0, 0]);
    await p.publish('my-app/feed', 'before');
    await c.next((m) => m.payload === 'before');
    await w.api.apps.revoke(w.app.appId, w.actor.actorId);
    // The subscription is gone: later messages never arrive (they would, ahead of the sentinel).
    const held = () => Object.keys((sys.broker.broker.aedes as unknown as { clients: Record<string, { subscriptions: object }> }).clients[`${w.actor.actorId}/${c.client.options.clientId}`]?.subscriptions ?? {});
    await expect.poll(() => held().filter((f) => f.includes('/my-app/')).length, LIVE).toBe(0);
    await p.publish('my-app/feed', 'after', { qos: 1 });
    expect((await receivedBefore(c, p, 'keep/sentinel')).map((m) => m.payload)).toEqual(['before']);
    // Publishing to the app now closes the connection (MQTT_DENY_ACTION=disconnect).
    c.client.publish('my-app/feed', 'not allowed');
    await expect.poll(() => isClosed(c), LIVE).toBe(true);
    await p.end();
  });

  it('removing a role assignment re-decides publishes on an rbac app', async () => {
    const w = await world('live-role');
    const grant = await allowTopics(sys.side, w.actor.subjectId, w.scope.accessScopeId, [['publish', 'sensors/+/temp']]);
    const c = await connect(sys.url, w.actor.actorId, w.actor.token);
    await c.publish('sensors/kitchen/temp', '20');
    expect(c.client.connected).toBe(true);
    await sys.side.ok('DELETE', `/v1/role-assignments/${grant.assignmentId}`);
    // Each probe is answered either by a PUBACK (still allowed) or by the broker closing the connection.
    await expect
      .poll(async () => {
        await Promise.race([c.publish('sensors/kitchen/temp', '21', { qos: 1 }).catch(() => undefined), c.closed]);
        return isClosed(c);
      }, LIVE)
      .toBe(true);
  });

  it('removing a permission drops rbac subscriptions it allowed', async () => {
    const w = await world('live-perm');
    const grant = await allowTopics(sys.side, w.actor.subjectId, w.scope.accessScopeId, [['subscribe', 'sensors/#']]);
    const c = await connect(sys.url, w.actor.actorId, w.actor.token);
    const p = await connect(sys.url, w.peer.actorId, w.peer.token);
    expect(await c.subscribe(['sensors/+/temp', 'my-app/sentinel'])).toEqual([0, 0]);
    await p.publish('sensors/hall/temp', 'one');
    await c.next((m) => m.payload === 'one');
    await sys.side.ok('DELETE', `/v1/permissions/${grant.permissionIds[0]}?cascade=true`);
    // Until the change reaches the session a probe arrives ahead of the sentinel (open app my-app); then none.
    await expect
      .poll(async () => {
        c.messages.length = 0;
        await p.publish('sensors/hall/temp', 'probe', { qos: 1 });
        return (await receivedBefore(c, p, 'my-app/sentinel')).length;
      }, LIVE)
      .toBe(0);
    expect(c.client.connected).toBe(true);
    await Promise.all([c.end(), p.end()]);
  });

  it('removing the membership closes nothing but revokes what it granted', async () => {
    const w = await world('live-membership');
    const grant = await allowTopics(sys.side, w.actor.subjectId, w.scope.accessScopeId, [['subscribe', 'sensors/#']]);
    const c = await connect(sys.url, w.actor.actorId, w.actor.token);
    expect(await c.subscribe('sensors/#')).toEqual([0]);
    await sys.side.ok('DELETE', `/v1/memberships/${grant.membershipId}?cascade=true`);
    await expect.poll(async () => (await c.subscribe('sensors/x/y'))[0], LIVE).toBe(128);
    expect(c.client.connected).toBe(true);
    await c.end();
  });
});

describe('credentials', () => {
  it('a session outlives no token: it is closed at exp', async () => {
    // The broker and the sidecar share a clock the test moves: the token expires without waiting for it.
    const clock = new SteppedClock();
    const timed = await startSystem({ sidecar: { clock: clock.date }, brokerOptions: { clock } });
    try {
      const { api } = await createProject(timed.sg, 'live-exp');
      const scope = await api.scopes.create({ slug: 'acme-corp', name: 'Acme' });
      const app = await api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
      const actor = await createActor(api, 'device', scope.accessScopeId, [app.appId]);
      const { token, expiresAt } = await api.actors.issueToken(actor.actorId, { ttlSeconds: 60 });
      const exp = Date.parse(expiresAt);
      const c = await connect(timed.url, actor.actorId, token);
      await c.subscribe('my-app/alive', 1);
      // A second before exp the session still works (a round trip through the broker).
      clock.advance(exp - 1_000 - clock.now());
      const alive = c.publish('my-app/alive', 'still here', { qos: 1 }).then(() => c.next((m) => m.payload === 'still here')).then(() => 'open');
      expect(await Promise.race([alive, c.closed.then(() => 'closed')])).toBe('open');
      // At exp the broker closes it, and the token gets no new session.
      clock.advance(exp - clock.now());
      await closedWithin(c);
      expect(await connackCode(timed.url, actor.actorId, token)).toBe(4);
    } finally {
      await timed.close();
    }
  });
});

describe('sidecar outage', () => {
  it('fails closed for new clients (CONNACK 3), keeps decided sessions for the grace, recovers without a broker restart', async () => {
    const store = new MemoryPolicyStore();
    let side: { url: string; brokerToken: string; adminToken: string; close(): Promise<void> } = await startSidecar(store);
    const port = Number(new URL(side.url).port);
    const { ScopeGateClient } = await import('../client/index.ts');
    const sg = new ScopeGateClient({ baseUrl: side.url, token: side.adminToken });
    const { api } = await createProject(sg, 'outage');
    const scope = await api.scopes.create({ slug: 'acme-corp', name: 'Acme' });
    const app = await api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
    const a = await createActor(api, 'a', scope.accessScopeId, [app.appId]);
    const b = await createActor(api, 'b', scope.accessScopeId, [app.appId]);
    const broker = await startTestBroker(side.url, side.brokerToken, { sidecarGraceMs: 1_500 });
    try {
      const ca = await connect(broker.url, a.actorId, a.token);
      await ca.subscribe('my-app/x');
      await side.close();

      // New connects: CONNACK 3. Decided sessions keep working inside the grace.
      expect(await connackCode(broker.url, b.actorId, b.token)).toBe(3);
      await ca.publish('my-app/x', 'during outage');
      expect((await ca.next()).payload).toBe('during outage');

      // Beyond the grace: sessions are closed (they would reconnect and get CONNACK 3).
      await expect.poll(() => isClosed(ca), { timeout: 4_000, interval: 50 }).toBe(true);

      // The sidecar comes back on the same address: the same broker serves again.
      side = await startSidecarOn(store, port);
      await expect.poll(() => connackCode(broker.url, b.actorId, b.token), { timeout: 5_000, interval: 100 }).toBe(0);
    } finally {
      await broker.close();
      await side.close();
    }
  });
});

async function startSidecarOn(store: MemoryPolicyStore, port: number) {
  const { createSidecar } = await import('../authz-sidecar/sidecar.ts');
  const sidecar = await createSidecar({ store, adminToken: 'test-admin-token-0123456789', brokerToken: 'test-broker-token-0123456789' });
  await sidecar.listen(port, '127.0.0.1');
  return { url: `http://127.0.0.1:${port}`, brokerToken: sidecar.brokerToken, adminToken: sidecar.adminToken, close: () => sidecar.close() };
}
