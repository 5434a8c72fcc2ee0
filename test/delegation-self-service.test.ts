/**
 * A user manages its own delegation grants through the API (issue 14: "an admin, or the principal through the
 * API"): it authenticates with a JWT of the configured identity provider (a real JWKS served over HTTP) whose
 * `sub` is its kindeId. Only for itself, only to an agent of a project where it holds a membership; list and
 * revoke only its own; nothing crosses a tenant; the audit log names the user. End to end: the user's grant
 * lets an admin-issued on-behalf-of token connect over MQTT with the intersection, and the user's revoke closes it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIdentityProvider, type TestIdentityProvider } from './helpers/identity-provider.ts';
import { connackCode, connect } from './helpers/mqtt.ts';
import { allowTopics, createActor, createProject, startSystem, type TestSystem } from './helpers/system.ts';

let idp: TestIdentityProvider;
let sys: TestSystem;
let P: string;
let P2: string;
let B: string;
let acmeScope: string;
let agent: Awaited<ReturnType<typeof createActor>>;
let device: { actorId: string };
let otherProjectAgent: Awaited<ReturnType<typeof createActor>>;
let betaAgent: Awaited<ReturnType<typeof createActor>>;
let carol: { id: string; subjectId: string };
let dave: { id: string; subjectId: string };

beforeAll(async () => {
  idp = await startIdentityProvider();
  sys = await startSystem({ sidecar: { trustedIssuer: idp.config } });

  const acme = await createProject(sys.sg, 'self-dlg');
  P = `/v1/organizations/${acme.orgId}/projects/${acme.projectId}`;
  acmeScope = (await acme.api.scopes.create({ slug: 'acme', name: 'Acme' })).accessScopeId;
  const app = await acme.api.apps.create({ slug: 'agents', name: 'Agents', mode: 'open' });
  agent = await createActor(acme.api, 'assistant', acmeScope, [app.appId]);
  device = await acme.api.actors.create({ name: 'sensor', accessScopeId: acmeScope, kind: 'device' });
  // A second project of the same tenant, where Carol holds no membership.
  const ws2 = await sys.sg.workspaces.create({ tenantId: acme.orgId, name: 'Other' });
  const project2 = await sys.sg.projects.create({ tenantId: acme.orgId, workspaceId: ws2.id, name: 'Other' });
  P2 = `/v1/organizations/${acme.orgId}/projects/${project2.id}`;
  otherProjectAgent = await createActor(sys.sg.project(acme.orgId, project2.id), 'elsewhere', null, []);

  // Carol: a user of Acme (its own user record), may use agents/tasks/# at acme. Dave: another Acme user.
  carol = await sys.side.ok('POST', '/v1/users', { kindeId: 'kp_carol', email: 'carol@acme.example', defaultTenantId: acme.orgId });
  await allowTopics(sys.side, carol.subjectId, acmeScope, [
    ['publish', 'agents/tasks/#'],
    ['subscribe', 'agents/tasks/#'],
  ]);
  dave = await sys.side.ok('POST', '/v1/users', { kindeId: 'kp_dave', email: 'dave@acme.example', defaultTenantId: acme.orgId });
  await allowTopics(sys.side, dave.subjectId, acmeScope, []);

  // Beta: another tenant with its own agent, and its own user with the same identity-provider id as Eve.
  const beta = await createProject(sys.sg, 'self-dlg-beta');
  B = `/v1/organizations/${beta.orgId}/projects/${beta.projectId}`;
  betaAgent = await createActor(beta.api, 'beta-assistant', null, []);
  const eve = await sys.side.ok('POST', '/v1/users', { kindeId: 'kp_eve', email: 'eve@beta.example', defaultTenantId: beta.orgId });
  await sys.side.ok('POST', '/v1/memberships', { subjectId: eve.subjectId, scopeId: `scope_${beta.projectId}` });
}, 30_000);
afterAll(async () => {
  await sys?.close();
  await idp?.close();
});

const idpToken = (sub: string, options?: { forged?: boolean }) => idp.token(sub, options);

async function auditLine(action: string, recordId: string) {
  const audit = await sys.side.ok('GET', '/v1/audit?limit=1000');
  return (audit.data as Array<{ action: string; principal: string; before: Array<{ id: string }>; after: Array<{ id: string }> }>).find(
    (l) => l.action === action && [...l.before, ...l.after].some((r) => r.id === recordId),
  );
}

describe('a user manages its own delegation grants with its identity provider token', () => {
  it('creates, lists and revokes only its own grants; the audit log names the user', async () => {
    const carolToken = await idpToken('kp_carol');
    const created = await sys.side.api('POST', `${P}/actors/${agent.actorId}/delegations`, { subjectId: carol.subjectId, expiresInSeconds: 600 }, carolToken);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ actorId: agent.actorId, principalSubjectId: carol.subjectId, createdBy: carol.subjectId });
    expect((await auditLine('delegation.create', created.body.id))?.principal).toBe(carol.subjectId);

    // An admin's grant for Dave on the same agent: Carol neither sees nor revokes it.
    const davesGrant = await sys.side.ok('POST', `${P}/actors/${agent.actorId}/delegations`, { subjectId: dave.subjectId });
    const listed = await sys.side.api('GET', `${P}/actors/${agent.actorId}/delegations`, undefined, carolToken);
    expect(listed.status).toBe(200);
    expect(listed.body.data.map((d: { id: string }) => d.id)).toEqual([created.body.id]);
    const notHers = await sys.side.api('DELETE', `${P}/actors/${agent.actorId}/delegations/${davesGrant.id}`, undefined, carolToken);
    expect(notHers.status).toBe(404);
    expect(notHers.body.error.code).toBe('NOT_FOUND');
    // The admin still sees both.
    expect((await sys.side.ok('GET', `${P}/actors/${agent.actorId}/delegations`)).data).toHaveLength(2);

    const revoked = await sys.side.api('DELETE', `${P}/actors/${agent.actorId}/delegations/${created.body.id}`, undefined, carolToken);
    expect(revoked.status).toBe(200);
    expect(revoked.body.deleted).toEqual([{ kind: 'delegation', id: created.body.id }]);
    expect((await auditLine('delegation.delete', created.body.id))?.principal).toBe(carol.subjectId);
    expect((await sys.side.api('GET', `${P}/actors/${agent.actorId}/delegations`, undefined, carolToken)).body.data).toEqual([]);
  });

  it('refuses everything else with a clear error and changes nothing', async () => {
    const carolToken = await idpToken('kp_carol');
    const before = (await sys.side.ok('GET', `${P}/actors/${agent.actorId}/delegations`)).data.length;
    const cases: Array<[string, string, unknown, string, number, string]> = [
      // [what, path, body, token, status, code]
      ['for another subject', `${P}/actors/${agent.actorId}/delegations`, { subjectId: dave.subjectId }, carolToken, 403, 'FORBIDDEN'],
      ['to a device', `${P}/actors/${device.actorId}/delegations`, { subjectId: carol.subjectId }, carolToken, 422, 'RULE_VIOLATION'],
      ['to an agent of a project without her membership', `${P2}/actors/${otherProjectAgent.actorId}/delegations`, { subjectId: carol.subjectId }, carolToken, 403, 'FORBIDDEN'],
      ["in another tenant's organization", `${B}/actors/${betaAgent.actorId}/delegations`, { subjectId: carol.subjectId }, carolToken, 403, 'FORBIDDEN'],
      ["another tenant's agent under her organization's URL", `${P}/actors/${betaAgent.actorId}/delegations`, { subjectId: carol.subjectId }, carolToken, 404, 'NOT_FOUND'],
      ['an unknown identity', `${P}/actors/${agent.actorId}/delegations`, { subjectId: carol.subjectId }, await idpToken('kp_nobody'), 403, 'FORBIDDEN'],
      ["Beta's user with Acme's URL", `${P}/actors/${agent.actorId}/delegations`, { subjectId: carol.subjectId }, await idpToken('kp_eve'), 403, 'FORBIDDEN'],
      ["another tenant's actor with its own token", `${P}/actors/${agent.actorId}/delegations`, { subjectId: betaAgent.subjectId }, betaAgent.token, 403, 'FORBIDDEN'],
      ['a token the identity provider did not sign', `${P}/actors/${agent.actorId}/delegations`, { subjectId: carol.subjectId }, await idpToken('kp_carol', { forged: true }), 401, 'UNAUTHENTICATED'],
      ['a malformed body', `${P}/actors/${agent.actorId}/delegations`, { subjectId: carol.subjectId, expiresInSeconds: 31 * 24 * 3600 }, carolToken, 400, 'VALIDATION_FAILED'],
      ['a body that is not JSON', `${P}/actors/${agent.actorId}/delegations`, '{"subjectId":', carolToken, 400, 'INVALID_JSON'],
    ];
    for (const [what, path, body, token, status, code] of cases) {
      const r = await sys.side.api('POST', path, body, token);
      expect({ what, status: r.status, code: r.body?.error?.code }).toEqual({ what, status, code });
    }
    expect((await sys.side.ok('GET', `${P}/actors/${agent.actorId}/delegations`)).data).toHaveLength(before);
    expect((await sys.side.ok('GET', `${B}/actors/${betaAgent.actorId}/delegations`)).data).toHaveLength(0);
    // Listing is confined the same way: Beta's actor cannot even learn whether an Acme agent exists.
    expect((await sys.side.api('GET', `${P}/actors/${agent.actorId}/delegations`, undefined, betaAgent.token)).status).toBe(403);
    expect((await sys.side.api('GET', `${P}/actors/actor_doesnotexist/delegations`, undefined, betaAgent.token)).status).toBe(403);
    // The user's token is no admin credential anywhere else.
    expect((await sys.side.api('GET', `${P}/actors`, undefined, carolToken)).status).toBe(401);
    expect((await sys.side.api('POST', `${P}/actors/${agent.actorId}/tokens`, { onBehalfOf: { subjectId: carol.subjectId } }, carolToken)).status).toBe(401);
  });
});

describe('end to end over MQTT', () => {
  it("the user's grant lets the agent act with the intersection; the user's revoke closes the session", async () => {
    const carolToken = await idpToken('kp_carol');
    const grant = await sys.side.ok('POST', `${P}/actors/${agent.actorId}/delegations`, { subjectId: carol.subjectId, expiresInSeconds: 600 }, carolToken);
    const { token } = await sys.side.ok('POST', `${P}/actors/${agent.actorId}/tokens`, { onBehalfOf: { subjectId: carol.subjectId } });
    const c = await connect(sys.url, agent.actorId, token);
    try {
      // Carol may use agents/tasks/# only; the agent alone could subscribe to agents/#: the intersection holds.
      expect(await c.subscribe(['agents/tasks/+', 'agents/#'])).toEqual([0, 128]);
      await c.publish('agents/tasks/7', 'for carol');
      await c.next((m) => m.payload === 'for carol');
      const revoked = await sys.side.api('DELETE', `${P}/actors/${agent.actorId}/delegations/${grant.id}`, undefined, carolToken);
      expect(revoked.status).toBe(200);
      await c.closed;
      expect(await connackCode(sys.url, agent.actorId, token)).toBe(5);
      // The agent's own token is untouched.
      expect(await connackCode(sys.url, agent.actorId, agent.token)).toBe(0);
    } finally {
      await c.end();
    }
  });
});

describe('the OpenAPI document', () => {
  it('says who may call the delegation routes, with their errors', async () => {
    const doc = await sys.side.ok('GET', '/openapi.json');
    const path = doc.paths['/v1/organizations/{orgId}/projects/{projectId}/actors/{actorId}/delegations'];
    for (const op of [path.post, path.get, doc.paths['/v1/organizations/{orgId}/projects/{projectId}/actors/{actorId}/delegations/{delegationId}'].delete]) {
      expect(op.description).toContain('TRUSTED_JWT_ISSUER');
      expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['401', '403', '404']));
    }
    expect(Object.keys(path.post.responses)).toEqual(expect.arrayContaining(['201', '400', '422']));
  });
});
