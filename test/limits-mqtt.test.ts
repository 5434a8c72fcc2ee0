/**
 * Limits on the scope tree (SPEC §7, issue 13) and the permission fields maxQos / retain / maxPayloadBytes,
 * as a client sees them over real sockets: set through the API on a tenant, a project or an access scope,
 * narrowed by children, carried by the session grant and enforced by the broker in memory.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBrokerConfig } from '../broker/config.ts';
import { stateOf } from '../broker/session-registry.ts';
import { connect, type TestClient } from './helpers/mqtt.ts';
import { allowTopics, createActor, createProject, startSystem, type TestSystem } from './helpers/system.ts';

const LIVE = { timeout: 2_000, interval: 5 };
const isClosed = (c: TestClient) => !c.client.connected;
let sys: TestSystem;

beforeAll(async () => {
  // Small install defaults so the tests can reach them quickly: 64 KiB packets, 20 KB retained per tenant.
  const defaults = loadBrokerConfig({ BROKER_TOKEN: 'x'.repeat(16) }).limitDefaults;
  sys = await startSystem({ broker: { limitDefaults: { ...defaults, maxPacketBytes: 65_536, retainedBytesPerTenant: 20_000 } } });
});
afterAll(() => sys?.close());

async function world(slug: string, appSettings?: Record<string, unknown>) {
  const { api, orgId, projectId } = await createProject(sys.sg, slug);
  const scope = await api.scopes.create({ slug: 'acme-corp', name: 'Acme' });
  const app = await api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open', ...(appSettings ? { settings: appSettings } : {}) });
  const rbac = await api.apps.create({ slug: 'sensors', name: 'Sensors', mode: 'rbac' });
  const pub = await createActor(api, 'pub', scope.accessScopeId, [app.appId, rbac.appId]);
  const sub = await createActor(api, 'sub', scope.accessScopeId, [app.appId, rbac.appId]);
  return { api, orgId, projectId, scope, app, rbac, pub, sub };
}
type World = Awaited<ReturnType<typeof world>>;
const setScopeLimits = (w: World, limits: unknown) => sys.side.ok('PATCH', `/v1/organizations/${w.orgId}/projects/${w.projectId}/scopes/${w.scope.accessScopeId}`, { limits });
const counters = () => [...sys.broker.broker.context.limits.counters.entries()];
const countOf = (tenantId: string, event: string, limit: string) => counters().find(([t, e, l]) => t === tenantId && e === event && l === limit)?.[3] ?? 0;

describe('limits through the API', () => {
  it('tenant, project and access scope carry `limits`; the effective bound is the minimum along the path, with its source', async () => {
    const w = await world('lim-api');
    await sys.side.ok('PATCH', `/v1/tenants/${w.orgId}`, { limits: { maxPayloadBytes: 1000, maxSubscriptionsPerSession: 50, publishRate: { perSubtree: { messagesPerSecond: 500 } } } });
    await sys.side.ok('PATCH', `/v1/projects/${w.projectId}`, { limits: { maxPayloadBytes: 5000, maxSubscriptionsPerSession: 10 } });
    await setScopeLimits(w, { retained: { maxMessages: 3 } });
    expect((await sys.side.ok('GET', `/v1/tenants/${w.orgId}`)).limits.maxPayloadBytes).toBe(1000);

    const at = await sys.sg.limitsAt(w.scope.accessScopeId);
    expect(at.own).toEqual({ retained: { maxMessages: 3 } });
    // The project's 5000 does not widen the tenant's 1000; its 10 narrows the tenant's 50.
    expect(at.effective.session.maxPayloadBytes).toBe(1000);
    expect(at.effective.sources.maxPayloadBytes).toEqual({ value: 1000, scopeId: `scope_${w.orgId}` });
    expect(at.effective.sources.maxSubscriptionsPerSession).toEqual({ value: 10, scopeId: `scope_${w.projectId}` });
    expect(at.effective.subtrees.map((s) => s.scopeId)).toEqual([`scope_${w.orgId}`, w.scope.accessScopeId]);
  });

  it('bad limits are refused with VALIDATION_FAILED and change nothing; an owned scope’s limits are set on its owner', async () => {
    const w = await world('lim-bad');
    for (const limits of [{ maxSessions: -1 }, { publishRate: { perSession: { messagesPerSecond: 0 } } }, { unknown: 1 }, { retained: { maxBytes: 'lots' } }]) {
      const res = await sys.side.api('PATCH', `/v1/tenants/${w.orgId}`, { limits });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
    }
    expect((await sys.side.ok('GET', `/v1/tenants/${w.orgId}`)).limits).toBeNull();
    const owned = await sys.side.api('PATCH', `/v1/scopes/scope_${w.projectId}`, { limits: { maxSessions: 1 } });
    expect(owned.status).toBe(422);
    expect(owned.body.error.code).toBe('RULE_VIOLATION');
  });

  it('evaluate with an MQTT context names the limit that refused, and the permission field', async () => {
    const w = await world('lim-eval');
    await setScopeLimits(w, { maxPayloadBytes: 100 });
    await sys.side.ok('POST', '/v1/permissions', { scopeId: w.scope.accessScopeId, action: 'publish', resourceType: 'topic', resourcePattern: 'sensors/#', maxQos: 0, retain: false });
    const perms = await sys.side.ok('GET', `/v1/permissions?scopeId=${w.scope.accessScopeId}`);
    const role = await sys.side.ok('POST', '/v1/roles', { scopeId: w.scope.accessScopeId, name: 'pub' });
    await sys.side.ok('POST', '/v1/role-permissions', { roleId: role.id, permissionId: perms.data[0].id });
    const m = await sys.side.ok('POST', '/v1/memberships', { subjectId: w.pub.subjectId, scopeId: w.scope.accessScopeId });
    await sys.side.ok('POST', '/v1/role-assignments', { roleId: role.id, membershipId: m.id });
    const ask = (context: Record<string, unknown>) =>
      sys.side.ok('POST', '/v1/evaluate?explain=true', { actor: { subjectId: w.pub.subjectId, subjectType: 'actor' }, scopeId: w.scope.accessScopeId, action: 'publish', resource: { resourceType: 'topic', resourceId: 'sensors/a' }, context });

    expect((await ask({ qos: 0, payloadBytes: 10 })).decision).toBe('ALLOWED');
    const big = await ask({ qos: 0, payloadBytes: 101 });
    expect(big).toMatchObject({ decision: 'DENIED', reason: 'limit_exceeded', limit: { name: 'maxPayloadBytes', value: 100, scopeId: w.scope.accessScopeId } });
    const qos1 = await ask({ qos: 1, payloadBytes: 10 });
    expect(qos1).toMatchObject({ decision: 'DENIED', reason: 'no_matching_permission' });
    expect(qos1.trace.find((s: { reason: string }) => s.reason === 'permission_field')?.field).toBe('permission.maxQos');
    const retained = await ask({ qos: 0, retain: true });
    expect(retained.trace.find((s: { reason: string }) => s.reason === 'permission_field')?.field).toBe('permission.retain');
  });
});

describe('what a client sees', () => {
  it('a payload over maxPayloadBytes is refused like a denied publish (connection closed); one at the bound passes', async () => {
    const w = await world('lim-payload');
    await setScopeLimits(w, { maxPayloadBytes: 100 });
    const s = await connect(sys.url, w.sub.actorId, w.sub.token);
    const p = await connect(sys.url, w.pub.actorId, w.pub.token);
    await s.subscribe('my-app/#', 1);
    await p.publish('my-app/x', 'a'.repeat(100), { qos: 1 });
    await s.next((m) => m.payload.length === 100);
    p.client.publish('my-app/x', 'b'.repeat(101), { qos: 1 });
    await expect.poll(() => isClosed(p), LIVE).toBe(true);
    expect(s.messages.some((m) => m.payload.startsWith('b'))).toBe(false);
    expect(countOf(w.orgId, 'refused', 'maxPayloadBytes')).toBe(1);
    await s.end();
  });

  it('a packet over the install’s maximum packet size closes the connection before it is buffered', async () => {
    expect(loadBrokerConfig({ BROKER_TOKEN: 'x'.repeat(16) }).limitDefaults.maxPacketBytes).toBe(1_048_576);
    const w = await world('lim-packet');
    const s = await connect(sys.url, w.sub.actorId, w.sub.token);
    const p = await connect(sys.url, w.pub.actorId, w.pub.token);
    await s.subscribe('my-app/#', 1);
    p.client.publish('my-app/x', Buffer.alloc(70_000), { qos: 0 });
    await expect.poll(() => isClosed(p), LIVE).toBe(true);
    const p2 = await connect(sys.url, w.pub.actorId, w.pub.token);
    await p2.publish('my-app/x', 'sentinel', { qos: 1 });
    await s.next((m) => m.payload === 'sentinel');
    expect(s.messages.map((m) => m.payload)).toEqual(['sentinel']);
    await Promise.all([s.end(), p2.end()]);
  });

  it('subscriptions over maxSubscriptionsPerSession get SUBACK 0x80; re-subscribing and unsubscribing keep the count right', async () => {
    const w = await world('lim-subs');
    await sys.side.ok('PATCH', `/v1/projects/${w.projectId}`, { limits: { maxSubscriptionsPerSession: 2 } });
    const s = await connect(sys.url, w.sub.actorId, w.sub.token);
    expect(await s.subscribe(['my-app/a', 'my-app/b', 'my-app/c'])).toEqual([0, 0, 128]);
    expect(await s.subscribe('my-app/a', 1)).toEqual([1]);
    await new Promise<void>((r) => s.client.unsubscribe('my-app/b', () => r()));
    expect(await s.subscribe('my-app/c')).toEqual([0]);
    expect(await s.subscribe('my-app/d')).toEqual([128]);
    expect(countOf(w.orgId, 'refused', 'maxSubscriptionsPerSession')).toBe(2);
    await s.end();
  });

  it('rbac permission fields: maxQos grants a lower QoS (SUBACK shows it) and refuses a publish above it; retain: false refuses retained publishes', async () => {
    const w = await world('lim-perm');
    const role = await sys.side.ok('POST', '/v1/roles', { scopeId: w.scope.accessScopeId, name: 'fields' });
    const perms = await sys.side.ok('POST', '/v1/permissions/batch', [
      { scopeId: w.scope.accessScopeId, action: 'publish', resourceType: 'topic', resourcePattern: 'sensors/#', maxQos: 1, retain: false, maxPayloadBytes: 50 },
      { scopeId: w.scope.accessScopeId, action: 'subscribe', resourceType: 'topic', resourcePattern: 'sensors/#', maxQos: 0 },
    ]);
    for (const p of perms.data) await sys.side.ok('POST', '/v1/role-permissions', { roleId: role.id, permissionId: p.id });
    for (const actor of [w.pub, w.sub]) {
      const m = await sys.side.ok('POST', '/v1/memberships', { subjectId: actor.subjectId, scopeId: w.scope.accessScopeId });
      await sys.side.ok('POST', '/v1/role-assignments', { roleId: role.id, membershipId: m.id });
    }
    const s = await connect(sys.url, w.sub.actorId, w.sub.token);
    expect(await s.subscribe('sensors/#', 2)).toEqual([0]);
    const p = await connect(sys.url, w.pub.actorId, w.pub.token);
    await p.publish('sensors/t', 'qos1 ok', { qos: 1 });
    expect((await s.next((m) => m.payload === 'qos1 ok')).qos).toBe(0);

    for (const [payload, options] of [
      ['qos2', { qos: 2 }],
      ['retained', { qos: 0, retain: true }],
      ['x'.repeat(51), { qos: 0 }],
    ] as const) {
      const c = await connect(sys.url, w.pub.actorId, w.pub.token);
      c.client.publish('sensors/t', payload, options);
      await expect.poll(() => isClosed(c), LIVE).toBe(true);
    }
    await p.publish('sensors/t', 'sentinel', { qos: 1 });
    await s.next((m) => m.payload === 'sentinel');
    expect(s.messages.map((m) => m.payload)).toEqual(['qos1 ok', 'sentinel']);
    await Promise.all([s.end(), p.end()]);
  });

  it('open-app settings apply to every topic of the app', async () => {
    const w = await world('lim-open', { maxQos: 1, retain: false });
    const s = await connect(sys.url, w.sub.actorId, w.sub.token);
    expect(await s.subscribe('my-app/#', 2)).toEqual([1]);
    const p = await connect(sys.url, w.pub.actorId, w.pub.token);
    p.client.publish('my-app/x', 'retained', { qos: 0, retain: true });
    await expect.poll(() => isClosed(p), LIVE).toBe(true);
    expect(countOf(w.orgId, 'refused', 'permission.retain')).toBe(1);
    await s.end();
  });

  it('per-session publishRate is backpressure: every message arrives, in order, and the session was throttled', async () => {
    const w = await world('lim-session-rate');
    await setScopeLimits(w, { publishRate: { perSession: { messagesPerSecond: 50 } } });
    const s = await connect(sys.url, w.sub.actorId, w.sub.token);
    const p = await connect(sys.url, w.pub.actorId, w.pub.token);
    await s.subscribe('my-app/#', 1);
    const n = 90;
    // QoS 0 and QoS 1 alike: the socket is paused, nothing is dropped.
    await Promise.all(Array.from({ length: n }, (_, i) => p.publish('my-app/x', String(i), { qos: (i % 2) as 0 | 1 })));
    await p.publish('my-app/x', 'sentinel', { qos: 1 });
    await s.next((m) => m.payload === 'sentinel', 10_000);
    // Every message arrives, in order within each QoS (MQTT orders per QoS level; Aedes stores QoS 1 first).
    const got = (qos: number) => s.messages.filter((m) => m.payload !== 'sentinel' && Number(m.payload) % 2 === qos).map((m) => Number(m.payload));
    expect(got(0)).toEqual(Array.from({ length: n / 2 }, (_, i) => 2 * i));
    expect(got(1)).toEqual(Array.from({ length: n / 2 }, (_, i) => 2 * i + 1));
    expect(countOf(w.orgId, 'throttled', 'publishRate.perSession')).toBeGreaterThan(0);
    await Promise.all([s.end(), p.end()]);
  });

  it('subtree publishRate: QoS 0 over it is dropped and counted; QoS 1 is paced and every acknowledged message is delivered', async () => {
    const w = await world('lim-subtree-rate');
    await setScopeLimits(w, { publishRate: { perSubtree: { messagesPerSecond: 20 } } });
    const s = await connect(sys.url, w.sub.actorId, w.sub.token);
    const p = await connect(sys.url, w.pub.actorId, w.pub.token);
    const p2 = await connect(sys.url, w.pub.actorId, w.pub.token);
    await s.subscribe('my-app/#', 1);
    // Two sessions share the subtree's bucket.
    await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? p : p2).publish('my-app/q0', `z${i}`, { qos: 0 })));
    const acked: string[] = [];
    await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? p : p2).publish('my-app/q1', `o${i}`, { qos: 1 }).then(() => acked.push(`o${i}`))));
    expect(acked).toHaveLength(30);
    await expect.poll(() => s.messages.filter((m) => m.payload.startsWith('o')).length, { timeout: 10_000, interval: 20 }).toBe(30);
    expect(s.messages.filter((m) => m.payload.startsWith('z')).length).toBeLessThan(60);
    expect(countOf(w.orgId, 'dropped', 'publishRate.perSubtree')).toBeGreaterThan(0);
    expect(p.client.connected && p2.client.connected).toBe(true);
    await Promise.all([s.end(), p.end(), p2.end()]);
  });

  it('retained quota: over it the message is not stored and the publish is refused; replacing and clearing give quota back', async () => {
    const w = await world('lim-retained');
    await setScopeLimits(w, { retained: { maxMessages: 2 } });
    const p = await connect(sys.url, w.pub.actorId, w.pub.token);
    await p.publish('my-app/r1', 'one', { qos: 1, retain: true });
    await p.publish('my-app/r2', 'two', { qos: 1, retain: true });
    await p.publish('my-app/r1', 'one again', { qos: 1, retain: true });
    p.client.publish('my-app/r3', 'three', { qos: 1, retain: true });
    await expect.poll(() => isClosed(p), LIVE).toBe(true);
    const s = await connect(sys.url, w.sub.actorId, w.sub.token);
    await s.subscribe('my-app/#', 1);
    await s.next((m) => m.payload === 'two');
    await s.next((m) => m.payload === 'one again');
    const p2 = await connect(sys.url, w.pub.actorId, w.pub.token);
    await p2.publish('my-app/r2', '', { qos: 1, retain: true });
    await p2.publish('my-app/r3', 'three', { qos: 1, retain: true });
    await s.next((m) => m.payload === 'three');
    expect(countOf(w.orgId, 'refused', 'retained')).toBe(1);
    await Promise.all([s.end(), p2.end()]);
  });

  it('the install’s per-tenant retained bound holds with no limits configured', async () => {
    const w = await world('lim-retained-default');
    const p = await connect(sys.url, w.pub.actorId, w.pub.token);
    await p.publish('my-app/big1', 'x'.repeat(9_000), { qos: 1, retain: true });
    await p.publish('my-app/big2', 'x'.repeat(9_000), { qos: 1, retain: true });
    p.client.publish('my-app/big3', 'x'.repeat(9_000), { qos: 1, retain: true });
    await expect.poll(() => isClosed(p), LIVE).toBe(true);
    expect(countOf(w.orgId, 'refused', 'retained')).toBe(1);
  });

  it('maxQueuedMessages: an offline session keeps the oldest messages up to its bound; newer ones are refused and counted', async () => {
    const w = await world('lim-queue');
    await setScopeLimits(w, { maxQueuedMessages: 5 });
    const s = await connect(sys.url, w.sub.actorId, w.sub.token, { clientId: 'queued', clean: false });
    await s.subscribe('my-app/q', 1);
    await s.end();
    const p = await connect(sys.url, w.pub.actorId, w.pub.token);
    for (let i = 0; i < 8; i++) await p.publish('my-app/q', `m${i}`, { qos: 1 });
    const back = await connect(sys.url, w.sub.actorId, w.sub.token, { clientId: 'queued', clean: false });
    await back.next((m) => m.payload === 'm4');
    await p.publish('my-app/q', 'sentinel', { qos: 1 });
    await back.next((m) => m.payload === 'sentinel');
    expect(back.messages.map((m) => m.payload)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'sentinel']);
    expect(countOf(w.orgId, 'dropped', 'maxQueuedMessages')).toBe(3);
    await Promise.all([back.end(), p.end()]);
  });
});

describe('live limits', () => {
  it('a limit changed while clients are connected applies to them through the change feed', async () => {
    const w = await world('lim-live');
    const s = await connect(sys.url, w.sub.actorId, w.sub.token);
    const p = await connect(sys.url, w.pub.actorId, w.pub.token);
    await s.subscribe('my-app/#', 1);
    await p.publish('my-app/x', 'a'.repeat(80), { qos: 1 });
    await s.next((m) => m.payload.length === 80);

    const started = performance.now();
    await sys.side.ok('PATCH', `/v1/tenants/${w.orgId}`, { limits: { maxPayloadBytes: 50 } });
    const [client] = sys.broker.broker.context.registry.clientsOf(w.pub.actorId);
    // The session's grant now carries the new bound (logged here; the latency figure is the bench's, since
    // tests assert no timings on this shared machine).
    await expect.poll(() => stateOf(client)?.limits?.maxPayloadBytes, LIVE).toBe(50);
    console.info(`limit change applied to the connected session ${(performance.now() - started).toFixed(1)} ms after the PATCH was sent`);
    p.client.publish('my-app/x', 'b'.repeat(80), { qos: 1 });
    await expect.poll(() => isClosed(p), LIVE).toBe(true);
    const p2 = await connect(sys.url, w.pub.actorId, w.pub.token);
    await p2.publish('my-app/x', 'sentinel', { qos: 1 });
    await s.next((m) => m.payload === 'sentinel');
    expect(s.messages.map((m) => m.payload[0])).toEqual(['a', 's']);
    await Promise.all([s.end(), p2.end()]);
  });
});
