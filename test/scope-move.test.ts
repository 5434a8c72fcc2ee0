/**
 * Moving an access scope to another parent (issue 15): `PATCH /v1/organizations/{org}/projects/{project}/scopes/{id}`
 * with `parentScopeId`, like an actor moves with `accessScopeId` (seed 000). The whole subtree moves, its actors get
 * the new topic namespace at once — a connected mqtt.js client's publishes land under the new slug path and none
 * under the old — and the audit log records the move. Refused: under itself or a descendant (422 SCOPE_CYCLE),
 * a slug already taken among the new siblings (409), a parent outside the project (422), and for an API key
 * anything outside its subtree or its own root (403). A refusal changes nothing. The subtree's retained messages
 * move with it. On both stores, the move is one commit that a sidecar started afresh (snapshot) sees as well.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScopeGateClient } from '../client/index.ts';
import { MemoryPolicyStore } from '../authz-sidecar/store/memory-policy-store.ts';
import type { PolicyStore } from '../authz-sidecar/store/policy-store.ts';
import { RedisPolicyStore, createRedisClient } from '../authz-sidecar/store/redis-policy-store.ts';
import { connect, type TestClient } from './helpers/mqtt.ts';
import { startRedis, uniquePrefix, type RedisHandle } from './helpers/redis-server.ts';
import { startSidecar } from './helpers/sidecar.ts';
import { createActor, createProject, startSystem, type TestSystem } from './helpers/system.ts';

const LIVE = { timeout: 5_000, interval: 20 };
let sys: TestSystem;
type Api = Awaited<ReturnType<typeof createProject>>['api'];
let api: Api;
let base: string;
let projectScopeId: string;
const id: Record<string, string> = {};
const clients: TestClient[] = [];

beforeAll(async () => {
  sys = await startSystem();
  const p = await createProject(sys.sg, 'movers');
  api = p.api;
  base = `/v1/organizations/${p.orgId}/projects/${p.projectId}`;
  projectScopeId = (await sys.sg.projects.get(p.projectId)).scopeId;
  id.chat = (await api.apps.create({ slug: 'chat', name: 'Chat', mode: 'open' })).appId;
  id.acme = (await api.scopes.create({ slug: 'acme', name: 'Acme' })).accessScopeId;
  id.beta = (await api.scopes.create({ slug: 'beta', name: 'Beta' })).accessScopeId;
  id.gamma = (await api.scopes.create({ slug: 'gamma', name: 'Gamma' })).accessScopeId;
  id.team = (await api.scopes.create({ slug: 'team', name: 'Team', parentScopeId: id.acme })).accessScopeId;
  id.sub = (await api.scopes.create({ slug: 'sub', name: 'Sub', parentScopeId: id.team })).accessScopeId;
  // Beta already has a child with Team's slug.
  id.betaTeam = (await api.scopes.create({ slug: 'team', name: 'Beta team', parentScopeId: id.beta })).accessScopeId;
});

afterAll(async () => {
  for (const c of clients) await c.end().catch(() => undefined);
  await sys?.close();
});

/** The slug path of an access scope below the project: its actors' namespace. */
async function slugPath(scopeId: string): Promise<string> {
  const slugs: string[] = [];
  for (let current = scopeId; current !== projectScopeId; ) {
    const scope = await api.scopes.get(current);
    slugs.unshift(scope.slug);
    current = scope.parentId!;
  }
  return slugs.join('/');
}

const parentOf = async (scopeId: string) => (await api.scopes.get(scopeId)).parentId;

describe('moving an access scope', () => {
  it("moves the subtree: a connected actor's publishes land under the new slug path, none under the old, and the audit log records it", async () => {
    const mover = await createActor(api, 'mover', id.sub!, [id.chat!]);
    const watcher = await createActor(api, 'watcher', null, [id.chat!]);
    const m = await connect(sys.url, mover.actorId, mover.token);
    const w = await connect(sys.url, watcher.actorId, watcher.token);
    clients.push(m, w);
    await w.subscribe('chat/#');
    await m.subscribe('chat/inbox');
    await m.publish('chat/hello', 'before');
    // A project-level subscriber sees the actor's namespace: chat/<scope path>/hello.
    await w.next((x) => x.payload === 'before');
    expect(w.messages.map((x) => x.topic)).toEqual(['chat/acme/team/sub/hello']);

    const moved = await api.scopes.move(id.team!, id.gamma!);
    expect(moved).toMatchObject({ accessScopeId: id.team, parentId: id.gamma, slug: 'team' });
    expect(await parentOf(id.sub!)).toBe(id.team); // the subtree came along

    // The session is re-decided by the change feed: publish until one lands under the new path.
    let n = 0;
    await expect
      .poll(async () => {
        await m.publish(`chat/probe-${++n}`, 'probe');
        await new Promise((r) => setTimeout(r, 20));
        return w.messages.some((x) => x.topic.startsWith('chat/gamma/team/sub/probe-'));
      }, LIVE)
      .toBe(true);
    // From now on nothing arrives under the old path: a message, then a sentinel, both under the new one.
    w.messages.length = 0;
    await m.publish('chat/after', 'after');
    await m.publish('chat/sentinel', 'sentinel');
    await w.next((x) => x.payload === 'sentinel');
    expect(w.messages.map((x) => x.topic)).toEqual(['chat/gamma/team/sub/after', 'chat/gamma/team/sub/sentinel']);
    // The actor's own subscription followed it: the watcher publishes into the new namespace and it arrives.
    await w.publish('chat/gamma/team/sub/inbox', 'to the mover');
    await m.next((x) => x.payload === 'to the mover');
    expect(m.messages.map((x) => x.topic)).toEqual(['chat/inbox']);

    const audit = await sys.side.ok('GET', '/v1/audit?action=access_scope.move');
    expect(audit.data).toHaveLength(1);
    expect(audit.data[0]).toMatchObject({ principal: 'admin', action: 'access_scope.move', before: [{ id: id.team, parentId: id.acme }], after: [{ id: id.team, parentId: id.gamma }] });
  });

  it("the subtree's retained messages move with it: found under the new path, gone from the old", async () => {
    const keeper = await createActor(api, 'keeper', id.sub!, [id.chat!]);
    const watcher = await createActor(api, 'retained-watcher', null, [id.chat!]);
    const k = await connect(sys.url, keeper.actorId, keeper.token);
    clients.push(k);
    await k.publish('chat/state', 'kept', { qos: 1, retain: true });
    const oldPath = `chat/${await slugPath(id.sub!)}/state`;
    const w0 = await connect(sys.url, watcher.actorId, watcher.token);
    await w0.subscribe(oldPath);
    await w0.next((x) => x.payload === 'kept' && x.retain);
    await w0.end();

    await api.scopes.move(id.team!, id.acme!);
    try {
      const newPath = `chat/${await slugPath(id.sub!)}/state`;
      expect(newPath).toBe('chat/acme/team/sub/state');
      expect(oldPath).toBe('chat/gamma/team/sub/state');
      // The broker moves what is stored once it has heard the change: a new subscriber finds it at the new path.
      await expect
        .poll(async () => {
          const w = await connect(sys.url, watcher.actorId, watcher.token);
          await w.subscribe(newPath);
          const got = await w.next((x) => x.payload === 'kept' && x.retain, 200).then(() => true, () => false);
          await w.end();
          return got;
        }, LIVE)
        .toBe(true);
      // And nothing at the old path: subscribed there, the first message is the subscriber's own sentinel.
      const w = await connect(sys.url, watcher.actorId, watcher.token);
      await w.subscribe(oldPath);
      await w.publish(oldPath, 'sentinel');
      await w.next((x) => x.payload === 'sentinel');
      expect(w.messages.map((x) => x.payload)).toEqual(['sentinel']);
      await w.end();
    } finally {
      await api.scopes.move(id.team!, id.gamma!); // where the next tests expect it
    }
  });

  it('refuses a move under itself or its own descendant (422 SCOPE_CYCLE), and changes nothing', async () => {
    for (const target of [id.team!, id.sub!]) {
      const r = await sys.side.api('PATCH', `${base}/scopes/${id.team}`, { parentScopeId: target });
      expect(r.status).toBe(422);
      expect(r.body.error.code).toBe('SCOPE_CYCLE');
    }
    expect(await parentOf(id.team!)).toBe(id.gamma);
  });

  it('refuses a slug already taken among the new siblings (409), a parent outside the project (422) and a malformed body (400)', async () => {
    const taken = await sys.side.api('PATCH', `${base}/scopes/${id.team}`, { parentScopeId: id.beta });
    expect(taken.status).toBe(409);
    expect(taken.body.error).toMatchObject({ code: 'ALREADY_EXISTS', details: [{ path: 'slug' }] });

    // Another project of the same organization, and another organization's scope.
    const ws = await sys.sg.workspaces.list({ tenantId: (await api.scopes.get(id.team!)).tenantId as string });
    const other = await sys.sg.projects.create({ workspaceId: ws.data[0]!.id, name: 'Other project' });
    const otherScope = await sys.sg.project(other.tenantId as string, other.id).scopes.create({ slug: 'elsewhere', name: 'Elsewhere' });
    const foreign = await createProject(sys.sg, 'foreign-org');
    const foreignScope = await foreign.api.scopes.create({ slug: 'theirs', name: 'Theirs' });
    for (const target of [otherScope.accessScopeId, foreignScope.accessScopeId, projectScopeId]) {
      const r = await sys.side.api('PATCH', `${base}/scopes/${id.team}`, { parentScopeId: target });
      expect(r.status, target).toBe(422);
      expect(r.body.error.code).toBe('INVALID_REFERENCE');
    }
    // A scope of another project cannot be reached through this project's URL.
    expect((await sys.side.api('PATCH', `${base}/scopes/${otherScope.accessScopeId}`, { parentScopeId: id.acme })).status).toBe(404);

    const bad = await sys.side.api('PATCH', `${base}/scopes/${id.team}`, { parentScopeId: 'not-an-id' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('VALIDATION_FAILED');
    expect(await parentOf(id.team!)).toBe(id.gamma);
    expect((await sys.sg.project(other.tenantId as string, other.id).scopes.get(otherScope.accessScopeId)).parentId).toBe(other.scopeId);
  });

  it('null moves a scope to the project level; a move with a rename is one write', async () => {
    const r = await sys.side.ok('PATCH', `${base}/scopes/${id.sub}`, { parentScopeId: null, name: 'Sub (top)' });
    expect(r).toMatchObject({ parentId: projectScopeId, name: 'Sub (top)' });
    const entries = (await sys.side.ok('GET', '/v1/audit?action=access_scope.move&limit=1')).data;
    expect(entries[0].after).toEqual([expect.objectContaining({ id: id.sub, parentId: projectScopeId, name: 'Sub (top)' })]);
    await api.scopes.move(id.sub!, id.team!);
  });

  it('an API key moves only within its subtree, and never its own root', async () => {
    const { key } = await sys.side.ok('POST', '/v1/api-keys', { scopeId: id.gamma, name: 'gamma admin' });
    const asKey = (scopeId: string, parentScopeId: string | null) => sys.side.api('PATCH', `${base}/scopes/${scopeId}`, { parentScopeId }, key);
    // Inside: Sub from Team up to Gamma, and back.
    expect((await asKey(id.sub!, id.gamma!)).status).toBe(200);
    expect((await asKey(id.sub!, id.team!)).status).toBe(200);
    // Out of its subtree, its own root anywhere, or a scope it cannot see: 403.
    for (const [scopeId, parent] of [[id.team!, id.acme!], [id.team!, null], [id.gamma!, id.acme!], [id.gamma!, id.beta!], [id.acme!, id.gamma!]] as const) {
      const r = await asKey(scopeId, parent);
      expect(r.status, `${scopeId} → ${parent}`).toBe(403);
      expect(r.body.error.code).toBe('FORBIDDEN');
    }
    expect(await parentOf(id.team!)).toBe(id.gamma);
    expect(await parentOf(id.gamma!)).toBe(projectScopeId);
    expect(await parentOf(id.acme!)).toBe(projectScopeId);
    // The key reaches the project's access-scope routes for its own subtree only; actors and apps stay out of reach.
    const listed = await sys.side.ok('GET', `${base}/scopes`, undefined, key);
    expect(listed.data.map((x: { accessScopeId: string }) => x.accessScopeId).sort()).toEqual([id.gamma!, id.team!, id.sub!].sort());
    for (const path of ['/actors', '/apps']) expect((await sys.side.api('GET', `${base}${path}`, undefined, key)).status).toBe(403);
  });
});

describe.each(['memory', 'redis'] as const)('a move on the %s store', (kind) => {
  let redis: RedisHandle | undefined;
  afterAll(async () => redis?.stop());

  it('is one commit: a sidecar loading the store afresh sees the new parent, and the slug index follows it', async () => {
    let store: () => PolicyStore;
    if (kind === 'redis') {
      redis = await startRedis();
      const prefix = uniquePrefix('scope-move');
      store = () => new RedisPolicyStore({ redis: createRedisClient(redis!.url), prefix });
    } else {
      const shared = new MemoryPolicyStore();
      // The same store for both sidecars; closing the first must not close it.
      store = () => ({
        snapshot: () => shared.snapshot(),
        commit: (c) => shared.commit(c),
        changesSince: (seq) => shared.changesSince(seq),
        watch: (listener) => shared.watch(listener),
        audit: (q) => shared.audit(q),
        ping: () => shared.ping(),
        close: async () => undefined,
      });
    }
    const first = await startSidecar(store());
    const sg = new ScopeGateClient({ baseUrl: first.url, token: first.adminToken });
    const { orgId, projectId, api: p } = await createProject(sg, `move-${kind}`);
    const north = (await p.scopes.create({ slug: 'north', name: 'North' })).accessScopeId;
    const depot = (await p.scopes.create({ slug: 'depot', name: 'Depot' })).accessScopeId;
    const seqBefore = (await first.ok('GET', '/v1/revision')).revision;
    const moved = await p.scopes.move(depot, north);
    expect(moved.revision).toBe(seqBefore + 1);
    await first.close();

    const second = await startSidecar(store());
    try {
      const again = new ScopeGateClient({ baseUrl: second.url, token: second.adminToken }).project(orgId, projectId);
      expect((await again.scopes.get(depot)).parentId).toBe(north);
      // 'depot' is now taken under North, and free again at the project level.
      await expect(again.scopes.create({ slug: 'depot', name: 'Another depot', parentScopeId: north })).rejects.toMatchObject({ status: 409, code: 'ALREADY_EXISTS' });
      expect((await again.scopes.create({ slug: 'depot', name: 'Depot at the top' })).parentId).not.toBe(north);
    } finally {
      await second.close();
    }
  });
});
