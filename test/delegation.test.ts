/**
 * On-behalf-of delegation (RFC 8693): delegation grants (admin or the principal itself), delegated tokens
 * (`sub` = principal, `act.sub` = agent), evaluate with `onBehalfOf` (intersection, explain shows both sides),
 * MQTT sessions limited to the intersection and closed when either side loses access.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connackCode, connect } from './helpers/mqtt.ts';
import { allowTopics, createActor, createProject, startSystem, type TestSystem } from './helpers/system.ts';

let sys: TestSystem;
let P: string;
let orgId: string;
let acmeScope: string;
let agent: Awaited<ReturnType<typeof createActor>>;
let aliceActor: Awaited<ReturnType<typeof createActor>>;
let user: { id: string; subjectId: string };
let userMembership: string;

beforeAll(async () => {
  sys = await startSystem();
  const project = await createProject(sys.sg, 'delegation');
  orgId = project.orgId;
  P = `/v1/organizations/${project.orgId}/projects/${project.projectId}`;
  const acme = await project.api.scopes.create({ slug: 'acme', name: 'Acme' });
  acmeScope = acme.accessScopeId;
  const app = await project.api.apps.create({ slug: 'agents', name: 'Agents', mode: 'open' });
  agent = await createActor(project.api, 'assistant', acmeScope, [app.appId]);
  aliceActor = await createActor(project.api, 'user-alice', acmeScope, [app.appId]);
  user = await sys.side.ok('POST', '/v1/users', { kindeId: 'kp_bob', email: 'bob@acme.example' });
  // The user may use agents/tasks/# only; the agent (open app) may use all of agents/#.
  const topics = await allowTopics(sys.side, user.subjectId, acmeScope, [
    ['publish', 'agents/tasks/#'],
    ['subscribe', 'agents/tasks/#'],
  ]);
  userMembership = topics.membershipId;
  // A document permission for evaluate: the user may read documents at acme, the agent may not (yet).
  const perm = await sys.side.ok('POST', '/v1/permissions', { scopeId: acmeScope, action: 'read', resourceType: 'document', resourcePattern: '*' });
  await sys.side.ok('POST', '/v1/role-permissions', { roleId: topics.roleId, permissionId: perm.id });
});
afterAll(() => sys?.close());

const decodeJwt = (t: string) => JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString());

describe('delegation grants and delegated tokens', () => {
  it('needs a grant; the token carries sub = principal and act.sub = agent; tenant and self are refused', async () => {
    const noGrant = await sys.side.api('POST', `${P}/actors/${agent.actorId}/tokens`, { onBehalfOf: { subjectId: user.subjectId } });
    expect(noGrant.status).toBe(403);

    const other = await createProject(sys.sg, 'delegation-other');
    const otherScope = await other.api.scopes.create({ slug: 'x', name: 'X' });
    const stranger = await other.api.actors.create({ name: 'stranger', accessScopeId: otherScope.accessScopeId, kind: 'agent' });
    const cross = await sys.side.api('POST', `${P}/actors/${agent.actorId}/delegations`, { subjectId: stranger.subjectId });
    expect(cross.status).toBe(422);
    expect(cross.body.error.code).toBe('CROSS_TENANT');
    const self = await sys.side.api('POST', `${P}/actors/${agent.actorId}/delegations`, { subjectId: agent.subjectId });
    expect(self.body.error.code).toBe('RULE_VIOLATION');
    const tooLong = await sys.side.api('POST', `${P}/actors/${agent.actorId}/delegations`, { subjectId: user.subjectId, expiresInSeconds: 31 * 24 * 3600 });
    expect(tooLong.status).toBe(400);

    const grant = await sys.side.ok('POST', `${P}/actors/${agent.actorId}/delegations`, { subjectId: user.subjectId, expiresInSeconds: 600 });
    expect(grant).toMatchObject({ actorId: agent.actorId, principalSubjectId: user.subjectId, createdBy: 'admin' });
    const audit = await sys.side.ok('GET', '/v1/audit?limit=1000');
    const line = (audit.data as Array<{ action: string; after: Array<Record<string, unknown>> }>).find((l) => l.action === 'delegation.create' && l.after.some((a) => a.id === grant.id));
    expect(line?.after.find((a) => a.id === grant.id)).toMatchObject({ actorId: agent.actorId, principalSubjectId: user.subjectId });

    const issued = await sys.side.ok('POST', `${P}/actors/${agent.actorId}/tokens`, { onBehalfOf: { subjectId: user.subjectId }, ttlSeconds: 86_400 });
    const claims = decodeJwt(issued.token);
    expect(claims.sub).toBe(user.subjectId);
    expect(claims.act).toEqual({ sub: agent.actorId });
    // Capped by the grant's lifetime (600 s), not the 86,400 s asked for.
    expect(claims.exp - claims.iat).toBeLessThanOrEqual(600);
    expect(issued.mqtt.username).toBe(agent.actorId);
  });

  it('the principal creates a grant for itself with its own token, and only for itself', async () => {
    const mine = await sys.side.api('POST', `${P}/actors/${agent.actorId}/delegations`, { subjectId: aliceActor.subjectId }, aliceActor.token);
    expect(mine.status).toBe(201);
    expect(mine.body.createdBy).toBe(aliceActor.subjectId);
    const forOther = await sys.side.api('POST', `${P}/actors/${agent.actorId}/delegations`, { subjectId: user.subjectId }, aliceActor.token);
    expect(forOther.status).toBe(403);
    // It lists only its own grants (the admin's grant for the user is not among them)…
    const listed = await sys.side.api('GET', `${P}/actors/${agent.actorId}/delegations`, undefined, aliceActor.token);
    expect(listed.status).toBe(200);
    expect(listed.body.data.map((d: { id: string }) => d.id)).toEqual([mine.body.id]);
    // …and its token is no admin token anywhere else.
    expect((await sys.side.api('GET', `${P}/actors`, undefined, aliceActor.token)).status).toBe(401);
  });
});

describe('evaluate on behalf of', () => {
  const body = (onBehalfOf?: string) => ({
    actor: { subjectId: agent.subjectId, subjectType: 'actor' },
    scopeId: acmeScope,
    action: 'read',
    resource: { resourceType: 'document', resourceId: 'd1' },
    ...(onBehalfOf ? { onBehalfOf: { subjectId: onBehalfOf } } : {}),
  });

  it('is the intersection of both sides, and explain shows both', async () => {
    // The agent alone may not read documents; the user may: acting for the user does not widen the agent.
    expect((await sys.side.ok('POST', '/v1/evaluate', body())).decision).toBe('DENIED');
    const denied = await sys.side.ok('POST', '/v1/evaluate?explain=true', body(user.subjectId));
    expect(denied.decision).toBe('DENIED');
    expect(denied.delegation.agent.decision).toBe('DENIED');
    expect(denied.delegation.principal.decision).toBe('ALLOWED');
    expect(denied.delegation.principal.trace.length).toBeGreaterThan(0);

    // Give the agent the same right: now both sides allow.
    await allowDocuments(agent.subjectId);
    const allowed = await sys.side.ok('POST', '/v1/evaluate', body(user.subjectId));
    expect(allowed.decision).toBe('ALLOWED');
    expect(allowed.delegation).toMatchObject({ agent: { decision: 'ALLOWED' }, principal: { decision: 'ALLOWED' } });

    // A principal without a grant: no_delegation, whatever both sides may do.
    const orphan = await sys.side.ok('POST', '/v1/users', { kindeId: 'kp_orphan', email: 'orphan@acme.example' });
    await allowTopics(sys.side, orphan.subjectId, acmeScope, []);
    const none = await sys.side.ok('POST', '/v1/evaluate', body(orphan.subjectId));
    expect(none).toMatchObject({ decision: 'DENIED', reason: 'no_delegation' });
  });
});

async function allowDocuments(subjectId: string) {
  const role = await sys.side.ok('POST', '/v1/roles', { scopeId: acmeScope, name: `docs ${subjectId.slice(-6)}` });
  const perm = await sys.side.ok('POST', '/v1/permissions', { scopeId: acmeScope, action: 'read', resourceType: 'document', resourcePattern: 'd*' });
  await sys.side.ok('POST', '/v1/role-permissions', { roleId: role.id, permissionId: perm.id });
  const m = await sys.side.ok('POST', '/v1/memberships', { subjectId, scopeId: acmeScope });
  await sys.side.ok('POST', '/v1/role-assignments', { roleId: role.id, membershipId: m.id });
}

describe('MQTT on behalf of a user', () => {
  it('topics are the intersection; the session closes when the principal loses access or the grant is revoked', async () => {
    const grant = await sys.side.ok('POST', `${P}/actors/${agent.actorId}/delegations`, { subjectId: user.subjectId, expiresInSeconds: 600 });
    const { token } = await sys.side.ok('POST', `${P}/actors/${agent.actorId}/tokens`, { onBehalfOf: { subjectId: user.subjectId } });
    const watcher = await connect(sys.url, aliceActor.actorId, aliceActor.token);
    await watcher.subscribe('agents/#');
    let c = await connect(sys.url, agent.actorId, token);
    try {
      // Inside both: allowed. The agent alone could also subscribe to agents/#, the user cannot: refused.
      expect(await c.subscribe(['agents/tasks/+', 'agents/#'])).toEqual([0, 128]);
      await c.publish('agents/tasks/1', 'for bob');
      await watcher.next((m) => m.payload === 'for bob');
      // Outside the user's topics: refused (the connection closes, the message never arrives).
      c.client.publish('agents/private', 'not for bob');
      await c.closed;
      await watcher.client.publishAsync('agents/tasks/2', 'sentinel');
      await watcher.next((m) => m.payload === 'sentinel');
      expect(watcher.messages.map((m) => m.payload)).not.toContain('not for bob');

      // The principal loses access (its membership goes): the delegated session closes.
      c = await connect(sys.url, agent.actorId, token);
      await sys.side.ok('DELETE', `/v1/memberships/${userMembership}?cascade=true`);
      await c.closed;
      // …and a new CONNECT with the same token is refused: the user is no longer part of the tenant.
      expect(await connackCode(sys.url, agent.actorId, token)).toBe(5);
      expect(grant.id).toMatch(/^dlg_/);
    } finally {
      await c.end();
      await watcher.end();
    }
  });

  it('revoking the delegation grant closes the session; the agent\'s own token still works', async () => {
    const grant = await sys.side.ok('POST', `${P}/actors/${agent.actorId}/delegations`, { subjectId: aliceActor.subjectId, expiresInSeconds: 600 });
    const { token } = await sys.side.ok('POST', `${P}/actors/${agent.actorId}/tokens`, { onBehalfOf: { subjectId: aliceActor.subjectId } });
    const c = await connect(sys.url, agent.actorId, token);
    // Alice (an actor in the same scope with the open app) brings agents/#: the intersection is agents/#.
    expect(await c.subscribe('agents/#')).toEqual([0]);
    for (const d of (await sys.side.ok('GET', `${P}/actors/${agent.actorId}/delegations`)).data) {
      if (d.principalSubjectId === aliceActor.subjectId) await sys.side.ok('DELETE', `${P}/actors/${agent.actorId}/delegations/${d.id}`);
    }
    await c.closed;
    expect(await connackCode(sys.url, agent.actorId, token)).toBe(5);
    expect(await connackCode(sys.url, agent.actorId, agent.token)).toBe(0);
    // A token claiming to act for someone with a tampered act claim is refused as bad credentials.
    const [h, , s] = token.split('.');
    const forged = Buffer.from(JSON.stringify({ ...decodeJwt(token), act: { sub: aliceActor.actorId } })).toString('base64url');
    expect(await connackCode(sys.url, agent.actorId, `${h}.${forged}.${s}`)).toBe(4);
    expect(grant.principalSubjectId).toBe(aliceActor.subjectId);
    void orgId;
  });
});
