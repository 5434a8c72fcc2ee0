/**
 * Seed 000's management routes as written, through the typed client: access scopes (→ accessScopeId),
 * actors (→ actorId), moving actors, apps and grants, credentials, and the broker's view of an actor
 * (the session grant: mount, namespace, apps).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScopeGateApiError, ScopeGateClient } from '../client/index.ts';
import { startSidecar, type TestSidecar } from './helpers/sidecar.ts';

let s: TestSidecar;
let sg: ScopeGateClient;
let orgId: string;
let projectId: string;
let otherOrg: string;

beforeAll(async () => {
  s = await startSidecar();
  sg = new ScopeGateClient({ baseUrl: s.url, token: s.adminToken });
  const org = await sg.tenants.create({ name: 'SaaS Inc', slug: 'saas', kind: 'standard' });
  const ws = await sg.workspaces.create({ tenantId: org.id, name: 'Main' });
  const project = await sg.projects.create({ tenantId: org.id, workspaceId: ws.id, name: 'Messaging' });
  orgId = org.id;
  projectId = project.id;
  otherOrg = (await sg.tenants.create({ name: 'Other', slug: 'other', kind: 'standard' })).id;
});
afterAll(() => s?.close());

const connect = (username: string, password: string) =>
  fetch(`${s.url}/v1/broker/connect`, {
    method: 'POST',
    headers: { authorization: `Bearer ${s.brokerToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ clientId: 'c1', username, password, remoteAddress: '127.0.0.1' }),
  }).then((r) => r.json());

describe('seed 000: one scope per tenant customer', () => {
  it('onboards a tenant: scope, actor, app grant; the actor is namespaced under the scope slug', async () => {
    const api = sg.project(orgId, projectId);
    const scope = await api.scopes.create({ slug: 'acme-corp', name: 'Acme Corp' });
    expect(scope.accessScopeId).toMatch(/^scope_/);
    const actor = await api.actors.create({ name: 'user-alice', accessScopeId: scope.accessScopeId, kind: 'device' });
    expect(actor.actorId).toMatch(/^actor_/);
    const app = await api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
    await api.apps.grant(app.appId, actor.actorId);

    const { token } = await api.actors.issueToken(actor.actorId);
    const decision = await connect(actor.actorId, token);
    expect(decision.decision).toBe('allowed');
    expect(decision.session).toMatchObject({ actorId: actor.actorId, tenantId: orgId, namespace: 'acme-corp', mount: `$sg/${projectId}` });
    expect(decision.session.apps).toEqual([{ appId: app.appId, slug: 'my-app', mode: 'open', publish: ['my-app/#'], subscribe: ['my-app/#'] }]);
  });

  it('moves actors between scopes with PATCH (staging → production), nested scopes give a slug path', async () => {
    const api = sg.project(orgId, projectId);
    const staging = await api.scopes.create({ slug: 'staging', name: 'Staging' });
    const production = await api.scopes.create({ slug: 'production', name: 'Production' });
    const tower = await api.scopes.create({ slug: 'downtown-tower', name: 'Downtown Tower', parentScopeId: production.accessScopeId });
    const actor = await api.actors.create({ name: 'tester', accessScopeId: staging.accessScopeId });
    const { token } = await api.actors.issueToken(actor.actorId);
    expect((await connect(actor.actorId, token)).session.namespace).toBe('staging');
    await api.actors.update(actor.actorId, { accessScopeId: tower.accessScopeId });
    expect((await connect(actor.actorId, token)).session.namespace).toBe('production/downtown-tower');
    await api.actors.update(actor.actorId, { accessScopeId: null });
    expect((await connect(actor.actorId, token)).session.namespace).toBe('');
  });

  it('refuses scopes of other projects, duplicate slugs, and projects of another organization', async () => {
    const api = sg.project(orgId, projectId);
    await expect(api.scopes.create({ slug: 'staging', name: 'Again' })).rejects.toMatchObject({ status: 409, code: 'ALREADY_EXISTS' });
    await expect(sg.project(otherOrg, projectId).actors.list()).rejects.toMatchObject({ status: 404 });
    await expect(api.actors.create({ name: 'x', accessScopeId: `scope_${otherOrg}` })).rejects.toMatchObject({ status: 422, code: 'INVALID_REFERENCE' });
    await expect(api.scopes.create({ slug: 'Bad Slug', name: 'x' })).rejects.toBeInstanceOf(ScopeGateApiError);
  });

  it('disabling an actor or revoking its app shows in its next session grant', async () => {
    const api = sg.project(orgId, projectId);
    const scope = await api.scopes.create({ slug: 'beta-corp', name: 'Beta' });
    const actor = await api.actors.create({ name: 'bob', accessScopeId: scope.accessScopeId });
    const app = await api.apps.create({ slug: 'agents-app', name: 'Agents' });
    await api.apps.grant(app.appId, actor.actorId);
    const { token } = await api.actors.issueToken(actor.actorId);
    expect((await connect(actor.actorId, token)).session.apps.map((a: { slug: string }) => a.slug)).toEqual(['agents-app']);
    await api.apps.revoke(app.appId, actor.actorId);
    expect((await connect(actor.actorId, token)).session.apps).toEqual([]);
    await api.actors.update(actor.actorId, { disabled: true });
    expect(await connect(actor.actorId, token)).toMatchObject({ decision: 'denied', reason: 'not_authorized' });
  });

  it('issues secrets shown once, usable as the MQTT password', async () => {
    const api = sg.project(orgId, projectId);
    const actor = await api.actors.create({ name: 'sensor-1' });
    const issued = await api.actors.issueSecret(actor.actorId);
    expect(issued.secret).toMatch(/^sgs_/);
    const listed = await api.actors.listSecrets(actor.actorId);
    expect(JSON.stringify(listed)).not.toContain(issued.secret);
    expect((await connect(actor.actorId, issued.secret)).decision).toBe('allowed');
    expect((await connect(actor.actorId, `${issued.secret.slice(0, -1)}x`)).decision).toBe('denied');
    await api.actors.revokeSecret(actor.actorId, issued.secretId);
    expect((await connect(actor.actorId, issued.secret)).decision).toBe('denied');
  });

  it('rbac apps carry the topic filters the actor may use, from the same engine as evaluate', async () => {
    const api = sg.project(orgId, projectId);
    const project = await sg.projects.get(projectId);
    const scope = await api.scopes.create({ slug: 'rbac-corp', name: 'RBAC Corp' });
    const app = await api.apps.create({ slug: 'fleet', name: 'Fleet', mode: 'rbac' });
    const actor = await api.actors.create({ name: 'truck-1', accessScopeId: scope.accessScopeId });
    await api.apps.grant(app.appId, actor.actorId);
    const role = (await sg.roles.createBatch([{ name: 'Telemetry', scopeId: project.scopeId }])).data[0]!;
    const perms = await sg.permissions.createBatch([
      { scopeId: project.scopeId, action: 'publish', resourceType: 'topic', resourcePattern: 'fleet/telemetry/+' },
      { scopeId: project.scopeId, action: 'subscribe', resourceType: 'topic', resourcePattern: 'fleet/commands/#' },
    ]);
    await sg.rolePermissions.createBatch(perms.data.map((p) => ({ roleId: role.id, permissionId: p.id })));
    const m = await sg.memberships.create({ subjectId: actor.subjectId, scopeId: scope.accessScopeId });
    await sg.roleAssignments.create({ roleId: role.id, membershipId: m.id });
    const { token } = await api.actors.issueToken(actor.actorId);
    const grant = (await connect(actor.actorId, token)).session.apps[0];
    expect(grant).toMatchObject({ mode: 'rbac', publish: ['fleet/telemetry/+'], subscribe: ['fleet/commands/#'] });
    const d = await sg.evaluate({ actor: { subjectId: actor.subjectId, subjectType: 'actor' }, scopeId: scope.accessScopeId, action: 'publish', resource: { resourceType: 'topic', resourceId: 'fleet/telemetry/speed' } });
    expect(d.decision).toBe('ALLOWED');
  });

  it('publishes its public keys at /.well-known/jwks.json', async () => {
    const jwks = await sg.jwks();
    expect(jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256' });
    expect(jwks.keys[0]).not.toHaveProperty('d');
  });
});
