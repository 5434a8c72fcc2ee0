/**
 * A write costs what it changes (issue 10): each class of admin write re-decides exactly the connected
 * sessions whose grant read what it wrote, and a write no grant reads re-decides none. The broker's own
 * refresh path reports which actors it re-fetched (LiveUpdates 'refreshed'); a sentinel write (renaming one
 * actor) after each write under test marks the point by which its refreshes have happened, since the feed is
 * in commit order and refreshes are fetched in the order they were queued.
 *
 * And a CONNECT racing a revocation (issue 11 item 4): the session is re-decided when a change heard between
 * its decision and its registration concerns it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type TestClient } from './helpers/mqtt.ts';
import { allowTopics, createActor, createProject, startSystem, type TestSystem } from './helpers/system.ts';

const LIVE = { timeout: 3_000, interval: 10 };
let sys: TestSystem;
beforeAll(async () => {
  sys = await startSystem();
});
afterAll(() => sys?.close());

describe('each class of write re-decides exactly the sessions it concerns', () => {
  type Api = Awaited<ReturnType<typeof createProject>>['api'];
  let api: Api;
  let orgId: string;
  const id: Record<string, string> = {};
  const actors: Record<string, { actorId: string; subjectId: string; token: string }> = {};
  const clients: TestClient[] = [];
  const names = (actorIds: string[]) => actorIds.map((a) => Object.keys(actors).find((n) => actors[n]!.actorId === a) ?? a).sort();

  beforeAll(async () => {
    const p = await createProject(sys.sg, 'precise');
    api = p.api;
    orgId = p.orgId;
    const open = await api.apps.create({ slug: 'chat', name: 'Chat', mode: 'open' });
    const rbac = await api.apps.create({ slug: 'sensors', name: 'Sensors', mode: 'rbac' });
    id.open = open.appId;
    id.rbac = rbac.appId;
    id.a = (await api.scopes.create({ slug: 'a', name: 'A' })).accessScopeId;
    id.a1 = (await api.scopes.create({ slug: 'a1', name: 'A1', parentScopeId: id.a })).accessScopeId;
    id.b = (await api.scopes.create({ slug: 'b', name: 'B' })).accessScopeId;
    id.d = (await api.scopes.create({ slug: 'd', name: 'D' })).accessScopeId;
    id.d1 = (await api.scopes.create({ slug: 'd1', name: 'D1', parentScopeId: id.d })).accessScopeId;
    const both = [open.appId, rbac.appId];
    actors.a = await createActor(api, 'in-a', id.a, both);
    actors.aOpen = await createActor(api, 'in-a-open-only', id.a, [open.appId]);
    actors.a1 = await createActor(api, 'in-a1', id.a1, both);
    actors.b = await createActor(api, 'in-b', id.b, both);
    actors.d1 = await createActor(api, 'in-d1', id.d1, [open.appId]);
    actors.project = await createActor(api, 'project-level', null, both);
    actors.sentinel = await createActor(api, 'sentinel', id.b, [open.appId]);
    for (const [n, a] of Object.entries(actors)) {
      if (n === 'a' || n === 'a1' || n === 'b' || n === 'project') {
        const scope = n === 'project' ? null : id[n]!;
        if (scope) await allowTopics(sys.side, a.subjectId, scope, [['subscribe', 'sensors/#']]);
      }
    }
    for (const a of Object.values(actors)) clients.push(await connect(sys.url, a.actorId, a.token));
  });
  afterAll(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
  });

  let sentinelN = 0;
  /** The actors re-decided because of `write` (and of nothing else). */
  async function refreshedBy(write: () => Promise<unknown>): Promise<string[]> {
    const live = sys.broker.broker.live;
    const seen = new Set<string>();
    const onRefresh = (ids: string[]) => ids.forEach((a) => seen.add(a));
    live.on('refreshed', onRefresh);
    try {
      await write();
      await api.actors.update(actors.sentinel!.actorId, { name: `sentinel ${++sentinelN}` });
      await expect.poll(() => seen.has(actors.sentinel!.actorId), LIVE).toBe(true);
    } finally {
      live.off('refreshed', onRefresh);
    }
    seen.delete(actors.sentinel!.actorId);
    return names([...seen]);
  }

  it('writes that change no grant input re-decide no session', async () => {
    expect(await refreshedBy(() => api.scopes.create({ slug: 'new-customer', name: 'New' }))).toEqual([]);
    expect(await refreshedBy(() => api.actors.create({ name: 'new-device', accessScopeId: id.a! }))).toEqual([]);
    expect(await refreshedBy(() => api.apps.create({ slug: 'new-app', name: 'New app', mode: 'rbac' }))).toEqual([]);
    expect(await refreshedBy(() => sys.sg.users.create({ kindeId: 'kp_precise', email: 'precise@example.com', defaultTenantId: orgId }))).toEqual([]);
    expect(await refreshedBy(() => sys.sg.tenants.update(orgId, { billingEmail: 'billing@example.com' }))).toEqual([]);
    expect(await refreshedBy(() => api.scopes.update(id.a!, { name: 'A renamed' }))).toEqual([]);
    // A new role and permission nobody uses yet.
    expect(await refreshedBy(() => sys.side.ok('POST', '/v1/roles', { scopeId: id.a, name: 'unused' }))).toEqual([]);
    expect(await refreshedBy(() => sys.side.ok('POST', '/v1/permissions', { scopeId: id.a, action: 'publish', resourceType: 'topic', resourcePattern: 'sensors/x' }))).toEqual([]);
    // A new actor's token, and its app grant (it is not connected).
    const fresh = await api.actors.create({ name: 'fresh', accessScopeId: id.b! });
    expect(await refreshedBy(() => api.apps.grant(id.open!, fresh.actorId))).toEqual([]);
  });

  it('an actor record, or an app grant, re-decides that actor only', async () => {
    expect(await refreshedBy(() => api.actors.update(actors.a!.actorId, { name: 'renamed' }))).toEqual(['a']);
    expect(await refreshedBy(() => api.apps.revoke(id.rbac!, actors.b!.actorId))).toEqual(['b']);
    expect(await refreshedBy(() => api.apps.grant(id.rbac!, actors.b!.actorId))).toEqual(['b']);
  });

  it('a role-permission, permission override or role assignment at a scope re-decides the rbac sessions whose path holds it', async () => {
    const role = await sys.side.ok('POST', '/v1/roles', { scopeId: id.a, name: 'role at a' });
    const perm = await sys.side.ok('POST', '/v1/permissions', { scopeId: id.a, action: 'publish', resourceType: 'topic', resourcePattern: 'sensors/+/cmd' });
    // A link at A concerns the rbac sessions in A's subtree — not A's open-only actor, B, or project-level actors.
    expect(await refreshedBy(() => sys.side.ok('POST', '/v1/role-permissions', { roleId: role.id, permissionId: perm.id }))).toEqual(['a', 'a1']);
    expect(await refreshedBy(() => sys.side.ok('POST', '/v1/scope-overrides/permissions', { childScopeId: id.a1, permissionId: perm.id, state: 'disabled' }))).toEqual(['a1']);
    // A membership or a role assignment concerns its subject only.
    const membership = await sys.side.ok('POST', '/v1/memberships', { subjectId: actors.a1!.subjectId, scopeId: id.a });
    expect(await refreshedBy(() => sys.side.ok('POST', '/v1/role-assignments', { roleId: role.id, membershipId: membership.id }))).toEqual(['a1']);
  });

  it('disabling an actor closes its sessions at once, without re-fetching its grant; enabled again, it connects and stays', async () => {
    const victim = await createActor(api, 'to-disable', id.b!, [id.open!]);
    const c = await connect(sys.url, victim.actorId, victim.token);
    expect(await refreshedBy(() => api.actors.update(victim.actorId, { disabled: true }))).toEqual([]);
    await expect.poll(() => c.client.connected, LIVE).toBe(false);
    // Enabled again: a session decided after the disable is not closed by it (the broker may read the
    // disable after the new CONNECT registered; the grant's revision tells them apart).
    await api.actors.update(victim.actorId, { disabled: false });
    const again = await connect(sys.url, victim.actorId, victim.token);
    await refreshedBy(() => api.actors.update(victim.actorId, { name: 'enabled again' }));
    await again.subscribe('chat/still-here');
    await again.publish('chat/still-here', 'yes');
    expect((await again.next((m) => m.topic === 'chat/still-here')).payload).toBe('yes');
    expect(again.client.connected).toBe(true);
    await Promise.all([c.end().catch(() => undefined), again.end()]);
  });

  it('deleting a scope closes the sessions of the actors it deleted, without re-fetching their grants', async () => {
    const d1 = clients[Object.keys(actors).indexOf('d1')]!;
    expect(await refreshedBy(() => api.scopes.delete(id.d!, { cascade: true }))).toEqual([]);
    await expect.poll(() => d1.client.connected, LIVE).toBe(false);
  });
});

describe('a CONNECT accepted around a revocation does not keep its old grant', () => {
  const ROUNDS = 12;
  type Api = Awaited<ReturnType<typeof createProject>>['api'];
  let api: Api;
  const id: Record<string, string> = {};

  beforeAll(async () => {
    const p = await createProject(sys.sg, 'connect-race');
    api = p.api;
    id.app = (await api.apps.create({ slug: 'chat', name: 'Chat', mode: 'open' })).appId;
    id.a = (await api.scopes.create({ slug: 'a', name: 'A' })).accessScopeId;
    id.b = (await api.scopes.create({ slug: 'b', name: 'B' })).accessScopeId;
  });

  /** CONNECT and `write` at once (the write a few ms later or earlier); the client when CONNACK was 0. */
  async function race(actor: { actorId: string; token: string }, write: () => Promise<unknown>, round: number): Promise<TestClient | null> {
    const lead = (round % 4) * 2;
    const [client] = await Promise.all([
      connect(sys.url, actor.actorId, actor.token).catch(() => null),
      new Promise((r) => setTimeout(r, lead)).then(write),
    ]);
    return client;
  }

  async function closedAfterPublishing(c: TestClient): Promise<boolean> {
    if (c.client.connected) c.client.publish('chat/after', 'x');
    await new Promise((r) => setTimeout(r, 10));
    return !c.client.connected;
  }

  it('disabled while connecting: the session is closed', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const actor = await createActor(api, `disable-${round}`, id.a!, [id.app!]);
      const c = await race(actor, () => api.actors.update(actor.actorId, { disabled: true }), round);
      if (c) await expect.poll(() => !c.client.connected, LIVE).toBe(true);
    }
  });

  it('app revoked while connecting: its publishes are refused', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const actor = await createActor(api, `revoke-${round}`, id.a!, [id.app!]);
      const c = await race(actor, () => api.apps.revoke(id.app!, actor.actorId), round);
      if (c) await expect.poll(() => closedAfterPublishing(c), LIVE).toBe(true);
    }
  });

  it('moved while connecting: the session lives in the new scope', async () => {
    const peer = await createActor(api, 'peer-in-b', id.b!, [id.app!]);
    const p = await connect(sys.url, peer.actorId, peer.token);
    for (let round = 0; round < ROUNDS; round++) {
      const actor = await createActor(api, `move-${round}`, id.a!, [id.app!]);
      const c = await race(actor, () => api.actors.update(actor.actorId, { accessScopeId: id.b! }), round);
      expect(c).not.toBeNull();
      await c!.subscribe(`chat/moved-${round}`);
      // What B publishes reaches it: its subscription is in B's namespace, not A's.
      await expect
        .poll(async () => {
          await p.publish(`chat/moved-${round}`, 'hello');
          await new Promise((r) => setTimeout(r, 10));
          return c!.messages.length > 0;
        }, LIVE)
        .toBe(true);
      await c!.end();
    }
    await p.end();
  });
});
