/**
 * Issue 11, item 5: after an `rbac` app's subscribe permission is revoked, messages must no longer reach the
 * actor — also not an offline persistent session whose stored subscription predates the revocation (before
 * the fix, delivery checked only the app grant, so the queued message was replayed on reconnect).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from './helpers/mqtt.ts';
import { allowTopics, createActor, createProject, startSystem, type TestSystem } from './helpers/system.ts';

let sys: TestSystem;
beforeAll(async () => {
  sys = await startSystem();
});
afterAll(() => sys?.close());

describe('rbac subscribe permission revoked', () => {
  it('an offline persistent session gets nothing under the revoked permission, and the rest in order', async () => {
    const { api } = await createProject(sys.sg, 'rbac-offline');
    const scope = await api.scopes.create({ slug: 'plant', name: 'Plant' });
    const sensors = await api.apps.create({ slug: 'sensors', name: 'Sensors', mode: 'rbac' });
    const open = await api.apps.create({ slug: 'ops', name: 'Ops', mode: 'open' });
    const reader = await createActor(api, 'reader', scope.accessScopeId, [sensors.appId, open.appId]);
    const writer = await createActor(api, 'writer', scope.accessScopeId, [sensors.appId, open.appId]);
    const readGrant = await allowTopics(sys.side, reader.subjectId, scope.accessScopeId, [['subscribe', 'sensors/#']]);
    await allowTopics(sys.side, writer.subjectId, scope.accessScopeId, [['publish', 'sensors/#']]);

    const r = await connect(sys.url, reader.actorId, reader.token, { clientId: 'reader', clean: false });
    expect(await r.subscribe('sensors/temp', 1)).toEqual([1]);
    expect(await r.subscribe('ops/sentinel', 1)).toEqual([1]);
    await r.end();

    await sys.side.ok('DELETE', `/v1/role-assignments/${readGrant.assignmentId}`);
    const w = await connect(sys.url, writer.actorId, writer.token);
    await w.publish('sensors/temp', 'after revocation', { qos: 1 });
    await w.publish('ops/sentinel', 'sentinel', { qos: 1 });

    const back = await connect(sys.url, reader.actorId, reader.token, { clientId: 'reader', clean: false });
    await back.next((m) => m.payload === 'sentinel');
    expect(back.messages.map((m) => m.payload)).toEqual(['sentinel']);
    await Promise.all([back.end(), w.end()]);
  });
});
