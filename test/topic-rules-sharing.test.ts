/**
 * The topic rules of an `rbac` app are computed once per set of roles at a scope and shared by every actor
 * holding that set (authz-sidecar/engine/evaluate.ts `allowedTopicRules`, memoised in the model until the next
 * change). What the broker receives must stay each actor's own: actors with other roles get other rules, and a
 * change to a role reaches every holder at once, in CONNECT decisions and refreshes alike.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refreshResponseSchema, unpackRefresh, type SessionGrant } from '../shared/broker-wire.ts';
import { createActor, createProject, startSystem, type TestSystem } from './helpers/system.ts';

let sys: TestSystem;
beforeAll(async () => {
  sys = await startSystem();
});
afterAll(() => sys?.close());

async function grants(actorIds: string[]): Promise<Record<string, SessionGrant | null>> {
  const res = await fetch(`${sys.side.url}/v1/broker/sessions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${sys.side.brokerToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ actorIds }),
  });
  expect(res.status).toBe(200);
  return unpackRefresh(refreshResponseSchema.parse(await res.json()))!.sessions;
}
const publishes = (g: SessionGrant | null | undefined) => g?.apps.find((a) => a.slug === 'sensors')?.publish.slice().sort() ?? null;

describe('rbac rules shared by the holders of the same roles', () => {
  it('each actor gets the rules of its own roles; a role change reaches all its holders and no one else', async () => {
    const { api, projectId } = await createProject(sys.sg, 'rules-sharing');
    const projectScope = (await sys.side.ok('GET', `/v1/projects/${projectId}`)).scopeId as string;
    const sensors = await api.apps.create({ slug: 'sensors', name: 'Sensors', mode: 'rbac' });
    const scope = (await api.scopes.create({ slug: 'plant', name: 'Plant' })).accessScopeId;
    const role = async (name: string, pattern: string, at: string) => {
      const r = await sys.side.ok('POST', '/v1/roles', { scopeId: at, name });
      const p = await sys.side.ok('POST', '/v1/permissions', { scopeId: at, action: 'publish', resourceType: 'topic', resourcePattern: pattern });
      await sys.side.ok('POST', '/v1/role-permissions', { roleId: r.id, permissionId: p.id });
      return { roleId: r.id as string, permissionId: p.id as string };
    };
    const { roleId: roleA, permissionId: aPermission } = await role('a', 'sensors/a/#', scope);
    // Role B is the project's: held through a membership at the plant or at the project itself.
    const { roleId: roleB } = await role('b', 'sensors/b/#', projectScope);
    const hold = async (subjectId: string, at: string, roleIds: string[]) => {
      const m = await sys.side.ok('POST', '/v1/memberships', { subjectId, scopeId: at });
      for (const roleId of roleIds) await sys.side.ok('POST', '/v1/role-assignments', { roleId, membershipId: m.id });
    };
    const [d1, d2, both, onlyB, none] = await Promise.all(['d1', 'd2', 'both', 'only-b', 'none'].map((n) => createActor(api, n, scope, [sensors.appId])));
    await hold(d1!.subjectId, scope, [roleA]);
    await hold(d2!.subjectId, scope, [roleA]);
    await hold(both!.subjectId, scope, [roleA, roleB]);
    await hold(onlyB!.subjectId, projectScope, [roleB]);
    const ids = [d1!, d2!, both!, onlyB!, none!].map((a) => a.actorId);

    let g = await grants(ids);
    expect(publishes(g[d1!.actorId])).toEqual(['sensors/a/#']);
    expect(publishes(g[d2!.actorId])).toEqual(['sensors/a/#']);
    expect(publishes(g[both!.actorId])).toEqual(['sensors/a/#', 'sensors/b/#']);
    expect(publishes(g[onlyB!.actorId])).toEqual(['sensors/b/#']);
    expect(publishes(g[none!.actorId])).toEqual([]);

    // A permission linked to role A: every holder of A has it at once, holders of B only do not.
    const extra = await sys.side.ok('POST', '/v1/permissions', { scopeId: scope, action: 'publish', resourceType: 'topic', resourcePattern: 'sensors/extra' });
    await sys.side.ok('POST', '/v1/role-permissions', { roleId: roleA, permissionId: extra.id });
    g = await grants(ids);
    expect(publishes(g[d1!.actorId])).toEqual(['sensors/a/#', 'sensors/extra']);
    expect(publishes(g[d2!.actorId])).toEqual(['sensors/a/#', 'sensors/extra']);
    expect(publishes(g[both!.actorId])).toEqual(['sensors/a/#', 'sensors/b/#', 'sensors/extra']);
    expect(publishes(g[onlyB!.actorId])).toEqual(['sensors/b/#']);

    // An override disabling role A's use of sensors/a/# at the scope; and d2 disabled.
    await sys.side.ok('POST', '/v1/scope-overrides/role-permissions', { childScopeId: scope, roleId: roleA, permissionId: aPermission, state: 'disabled' });
    await api.actors.update(d2!.actorId, { disabled: true });
    g = await grants(ids);
    expect(publishes(g[d1!.actorId])).toEqual(['sensors/extra']);
    expect(g[d2!.actorId]).toBeNull();
    expect(publishes(g[both!.actorId])).toEqual(['sensors/b/#', 'sensors/extra']);
    expect(publishes(g[onlyB!.actorId])).toEqual(['sensors/b/#']);
  });
});
