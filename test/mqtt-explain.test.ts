/**
 * POST /v1/mqtt/explain and `scopegate mqtt explain`: the decision the broker makes for an actor's publish or
 * subscribe, with what decided it. It tells the truth for open apps (where evaluate has no permission to find),
 * and each answer is checked against a real broker.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../cli/main.ts';
import { connect } from './helpers/mqtt.ts';
import { allowTopics, createActor, createProject, startSystem, type TestSystem } from './helpers/system.ts';

describe('MQTT explain', () => {
  let sys: TestSystem;
  beforeAll(async () => {
    sys = await startSystem();
  });
  afterAll(async () => {
    await sys?.close();
  });

  it('answers as the broker decides: open app, app not granted, topic rules, rbac pattern, disabled actor', async () => {
    const { side, sg } = sys;
    const p = await createProject(sg, 'explain');
    const acme = await p.api.scopes.create({ slug: 'acme-corp', name: 'Acme' });
    const open = await p.api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
    const fleet = await p.api.apps.create({ slug: 'fleet', name: 'Fleet', mode: 'rbac' });
    const alice = await createActor(p.api, 'alice', acme.accessScopeId, [open.appId, fleet.appId]);
    await allowTopics(side, alice.subjectId, acme.accessScopeId, [['publish', 'fleet/telemetry/+']]);
    const explain = (topic: string, action: 'publish' | 'subscribe' = 'publish', actorId = alice.actorId, token?: string) => side.api('POST', '/v1/mqtt/explain', { actorId, topic, action }, token);

    // Open app: evaluate finds no permission (DENIED no_membership for this actor elsewhere) but the broker allows.
    const evaluated = await side.ok('POST', '/v1/evaluate', { actor: { subjectId: alice.subjectId, subjectType: 'actor' }, scopeId: acme.accessScopeId, action: 'publish', resource: { resourceType: 'topic', resourceId: 'my-app/chat' } });
    expect(evaluated.decision).toBe('DENIED');
    const openAnswer = (await explain('my-app/chat')).body;
    expect(openAnswer).toMatchObject({ decision: 'ALLOWED', internalTopic: `$sg/${p.projectId}/my-app/acme-corp/chat` });
    expect(openAnswer.steps.map((s: { step: string; ok: boolean }) => [s.step, s.ok])).toEqual([
      ['actor', true],
      ['topic_rules', true],
      ['app_grant', true],
      ['rbac', true],
      ['namespace', true],
    ]);
    expect(openAnswer.steps[2].app).toMatchObject({ slug: 'my-app', mode: 'open', appId: open.appId });
    expect(openAnswer.steps[3]).toMatchObject({ skipped: true });

    expect((await explain('other-app/x')).body).toMatchObject({ decision: 'DENIED', reason: 'app_not_granted' });
    expect((await explain('#', 'subscribe')).body).toMatchObject({ decision: 'DENIED', reason: 'wildcard_app' });
    expect((await explain('$SYS/x')).body).toMatchObject({ decision: 'DENIED', reason: 'system_topic' });

    const rbacOk = (await explain('fleet/telemetry/truck-1')).body;
    expect(rbacOk).toMatchObject({ decision: 'ALLOWED' });
    expect(rbacOk.steps[3]).toMatchObject({ step: 'rbac', ok: true, skipped: false, pattern: 'fleet/telemetry/+', evaluate: { decision: 'ALLOWED' } });
    const rbacNo = (await explain('fleet/secrets')).body;
    expect(rbacNo).toMatchObject({ decision: 'DENIED', reason: 'not_permitted' });
    expect(rbacNo.steps[3]).toMatchObject({ step: 'rbac', ok: false, allowedPatterns: ['fleet/telemetry/+'], evaluate: { decision: 'DENIED', path: expect.arrayContaining([acme.accessScopeId]) } });
    expect((await explain('fleet/telemetry/+', 'subscribe')).body).toMatchObject({ decision: 'DENIED', reason: 'not_permitted' });

    // The broker agrees with every answer above.
    const c = await connect(sys.url, alice.actorId, alice.token);
    expect(await c.subscribe(['my-app/chat', 'other-app/x', 'fleet/telemetry/+'])).toEqual([0, 128, 128]);
    await c.publish('fleet/telemetry/truck-1', 'ok');
    await c.publish('my-app/chat', 'ok');
    expect(c.client.connected).toBe(true);
    await c.publish('fleet/secrets', 'refused').catch(() => undefined);
    await c.closed; // a refused publish closes the connection (MQTT_DENY_ACTION=disconnect)

    await p.api.actors.update(alice.actorId, { disabled: true });
    expect((await explain('my-app/chat')).body).toMatchObject({ decision: 'DENIED', reason: 'actor_may_not_connect', steps: [{ step: 'actor', ok: false }] });

    // Errors: unknown actor, bad action, another tenant's key.
    expect((await explain('my-app/chat', 'publish', 'actor_nope')).status).toBe(404);
    expect((await side.api('POST', '/v1/mqtt/explain', { actorId: alice.actorId, topic: 'x', action: 'read' })).body.error.code).toBe('VALIDATION_FAILED');
    const other = await createProject(sg, 'explain-other');
    const otherScope = (await side.ok('GET', `/v1/tenants/${other.orgId}`)).scopeId;
    const key = (await side.ok('POST', '/v1/api-keys', { scopeId: otherScope, name: 'other' })).key as string;
    expect((await explain('my-app/chat', 'publish', alice.actorId, key)).status).toBe(403);
  });

  it('scopegate mqtt explain prints the decision and each step', async () => {
    const { side, sg } = sys;
    const p = await createProject(sg, 'explain-cli');
    const app = await p.api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
    const bob = await createActor(p.api, 'bob', null, [app.appId]);
    let out = '';
    const code = await run(['mqtt', 'explain', '--actor', bob.actorId, '--topic', 'my-app/acme/chat', '--action', 'publish', '--url', side.url, '--token', side.adminToken], { stdout: (t) => (out += t), stderr: () => undefined, env: {} });
    expect(code).toBe(0);
    expect(out).toContain(`ALLOWED → $sg/${p.projectId}/my-app/acme/chat`);
    expect(out).toMatch(/ok\s+app_grant\s+granted app 'my-app' \(open/);
    let denied = '';
    expect(await run(['mqtt', 'explain', '--actor', bob.actorId, '--topic', 'nope/x', '--url', side.url, '--token', side.adminToken], { stdout: (t) => (denied += t), stderr: () => undefined, env: {} })).toBe(0);
    expect(denied).toContain('DENIED (app_not_granted)');
    expect(await run(['mqtt', 'explain', '--actor', bob.actorId, '--topic', 'x', '--action', 'read', '--url', side.url, '--token', side.adminToken], { stdout: () => undefined, stderr: () => undefined, env: {} })).toBe(2);
  });
});
