/**
 * AuthZEN Authorization API 1.0 on ScopeGate's engine, driven with the specification's own examples (subject
 * alice@acmecorp.com, `can_read` on documents, the boxcarring evaluations, the three evaluations semantics),
 * with the target scope in `resource.properties.scopeId`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActor, createProject, startSystem, type TestSystem } from './helpers/system.ts';

let sys: TestSystem;
let scopeId: string;
let alice: { id: string; subjectId: string };
let agent: Awaited<ReturnType<typeof createActor>>;
let P: string;

beforeAll(async () => {
  sys = await startSystem();
  const project = await createProject(sys.sg, 'authzen');
  P = `/v1/organizations/${project.orgId}/projects/${project.projectId}`;
  scopeId = (await project.api.scopes.create({ slug: 'acme', name: 'Acme' })).accessScopeId;
  alice = await sys.side.ok('POST', '/v1/users', { kindeId: 'kp_alice', email: 'alice@acmecorp.com' });
  const role = await sys.side.ok('POST', '/v1/roles', { scopeId, name: 'reader' });
  // can_read on every document but subject-search.md; can_edit on none.
  for (const [action, resourceType, pattern] of [
    ['can_read', 'document', 'b*'],
    ['can_read', 'document', 'resource-*'],
    ['can_read', 'account', '123'],
  ] as const) {
    const perm = await sys.side.ok('POST', '/v1/permissions', { scopeId, action, resourceType, resourcePattern: pattern });
    await sys.side.ok('POST', '/v1/role-permissions', { roleId: role.id, permissionId: perm.id });
  }
  const m = await sys.side.ok('POST', '/v1/memberships', { subjectId: alice.subjectId, scopeId });
  await sys.side.ok('POST', '/v1/role-assignments', { roleId: role.id, membershipId: m.id });
  agent = await createActor(project.api, 'assistant', scopeId, []);
  await sys.side.ok('POST', '/v1/memberships', { subjectId: agent.subjectId, scopeId }).then((am) => sys.side.ok('POST', '/v1/role-assignments', { roleId: role.id, membershipId: am.id }));
});
afterAll(() => sys?.close());

const doc = (id: string) => ({ type: 'document', id, properties: { scopeId } });

describe('AuthZEN metadata', () => {
  it('GET /.well-known/authzen-configuration names the evaluation endpoints, without auth', async () => {
    const res = await fetch(`${sys.side.url}/.well-known/authzen-configuration`);
    expect(res.status).toBe(200);
    const meta = await res.json();
    expect(meta).toEqual({
      policy_decision_point: sys.side.url,
      access_evaluation_endpoint: `${sys.side.url}/access/v1/evaluation`,
      access_evaluations_endpoint: `${sys.side.url}/access/v1/evaluations`,
    });
  });
});

describe('Access Evaluation API (spec §6 examples)', () => {
  it('the spec example request: alice@acmecorp.com can_read account 123 → decision true', async () => {
    const res = await fetch(`${sys.side.url}/access/v1/evaluation`, {
      method: 'POST',
      headers: { authorization: `Bearer ${sys.side.adminToken}`, 'content-type': 'application/json', 'x-request-id': 'bfe9eb29-ab87-4ca3-be83-a1d5d8305716' },
      body: JSON.stringify({
        subject: { type: 'user', id: 'alice@acmecorp.com' },
        resource: { type: 'account', id: '123', properties: { scopeId } },
        action: { name: 'can_read', properties: { method: 'GET' } },
        context: { time: '1985-10-26T01:22-07:00' },
      }),
    });
    expect(res.status).toBe(200);
    // The spec's transport section: the request id comes back.
    expect(res.headers.get('x-request-id')).toBe('bfe9eb29-ab87-4ca3-be83-a1d5d8305716');
    expect(await res.json()).toEqual({ decision: true });
  });

  it('a denial is decision false with the reason in context; subject ids and user ids work too', async () => {
    const denied = await sys.side.ok('POST', '/access/v1/evaluation', { subject: { type: 'user', id: alice.id }, action: { name: 'can_edit' }, resource: doc('boxcarring.md') });
    expect(denied).toEqual({ decision: false, context: { reason_admin: { en: 'no_matching_permission' } } });
    expect(await sys.side.ok('POST', '/access/v1/evaluation', { subject: { type: 'user', id: alice.subjectId }, action: { name: 'can_read' }, resource: doc('boxcarring.md') })).toEqual({ decision: true });
  });

  it('refuses what it cannot map: no scopeId, unknown subject type, no auth, malformed body', async () => {
    const noScope = await sys.side.api('POST', '/access/v1/evaluation', { subject: { type: 'user', id: 'alice@acmecorp.com' }, action: { name: 'can_read' }, resource: { type: 'document', id: 'x' } });
    expect(noScope.status).toBe(400);
    expect(noScope.body.error.details[0].path).toBe('body.resource.properties.scopeId');
    const badType = await sys.side.api('POST', '/access/v1/evaluation', { subject: { type: 'group', id: 'g' }, action: { name: 'can_read' }, resource: doc('x') });
    expect(badType.status).toBe(400);
    expect((await sys.side.api('POST', '/access/v1/evaluation', { subject: { type: 'user', id: 'a' }, action: { name: 'r' }, resource: doc('x') }, 'wrong-token')).status).toBe(401);
    expect((await sys.side.api('POST', '/access/v1/evaluation', { subject: { type: 'user' } })).status).toBe(400);
    const unknownScope = await sys.side.api('POST', '/access/v1/evaluation', { subject: { type: 'user', id: 'alice@acmecorp.com' }, action: { name: 'can_read' }, resource: { type: 'document', id: 'b', properties: { scopeId: 'scope_nope' } } });
    expect(unknownScope.status).toBe(404);
  });

  it('context.topic asks about an MQTT topic; context.onBehalfOf about an agent acting for a principal', async () => {
    const topic = await sys.side.ok('POST', '/access/v1/evaluation', { subject: { type: 'user', id: 'alice@acmecorp.com' }, action: { name: 'publish' }, resource: { type: 'topic', id: 'ignored', properties: { scopeId } }, context: { topic: 'fleet/x' } });
    expect(topic.decision).toBe(false);
    const asAgent = { subject: { type: 'agent', id: agent.actorId }, action: { name: 'can_read' }, resource: doc('boxcarring.md') };
    expect(await sys.side.ok('POST', '/access/v1/evaluation', asAgent)).toEqual({ decision: true });
    // On behalf of alice: no delegation grant yet.
    const noGrant = await sys.side.ok('POST', '/access/v1/evaluation', { ...asAgent, context: { onBehalfOf: 'alice@acmecorp.com' } });
    expect(noGrant).toMatchObject({ decision: false, context: { reason_admin: { en: 'no_delegation' } } });
    await sys.side.ok('POST', `${P}/actors/${agent.actorId}/delegations`, { subjectId: alice.subjectId });
    expect(await sys.side.ok('POST', '/access/v1/evaluation', { ...asAgent, context: { onBehalfOf: { subjectId: alice.subjectId } } })).toEqual({
      decision: true,
      context: { delegation: { agent: true, principal: true } },
    });
  });
});

describe('Access Evaluations API (spec §7 examples)', () => {
  // The boxcarring example: defaults for subject and action, three resources, the last one with its own action.
  const boxcar = (semantic?: string) => ({
    subject: { type: 'user', id: 'alice@acmecorp.com' },
    action: { name: 'can_read' },
    ...(semantic ? { options: { evaluations_semantic: semantic } } : {}),
    evaluations: [
      { resource: doc('boxcarring.md') },
      { resource: doc('subject-search.md') },
      { action: { name: 'can_edit' }, resource: doc('resource-search.md') },
    ],
  });

  it('execute_all (the default) answers every entry in order', async () => {
    const all = await sys.side.ok('POST', '/access/v1/evaluations', boxcar());
    expect(all.evaluations.map((e: { decision: boolean }) => e.decision)).toEqual([true, false, false]);
    expect(await sys.side.ok('POST', '/access/v1/evaluations', boxcar('execute_all'))).toEqual(all);
  });

  it('deny_on_first_deny stops after the first denial; permit_on_first_permit after the first permit', async () => {
    const deny = await sys.side.ok('POST', '/access/v1/evaluations', boxcar('deny_on_first_deny'));
    expect(deny.evaluations.map((e: { decision: boolean }) => e.decision)).toEqual([true, false]);
    const permitFirst = await sys.side.ok('POST', '/access/v1/evaluations', {
      ...boxcar('permit_on_first_permit'),
      evaluations: [{ resource: doc('subject-search.md') }, { resource: doc('boxcarring.md') }, { resource: doc('resource-search.md') }],
    });
    expect(permitFirst.evaluations.map((e: { decision: boolean }) => e.decision)).toEqual([false, true]);
    expect((await sys.side.api('POST', '/access/v1/evaluations', boxcar('first_wins'))).status).toBe(400);
  });

  it('an entry that cannot be decided is decision false with the error in its context; no evaluations = one decision', async () => {
    const mixed = await sys.side.ok('POST', '/access/v1/evaluations', {
      subject: { type: 'user', id: 'alice@acmecorp.com' },
      action: { name: 'can_read' },
      evaluations: [{ resource: { type: 'document', id: 'b', properties: { scopeId: 'scope_nope' } } }, { resource: doc('boxcarring.md') }],
    });
    expect(mixed.evaluations[0]).toMatchObject({ decision: false, context: { error: { status: 404, code: 'NOT_FOUND' } } });
    expect(mixed.evaluations[1]).toEqual({ decision: true });
    expect(await sys.side.ok('POST', '/access/v1/evaluations', { subject: { type: 'user', id: 'alice@acmecorp.com' }, action: { name: 'can_read' }, resource: doc('boxcarring.md') })).toEqual({ decision: true });
  });

  it('an API key of another tenant gets no decision about this tenant', async () => {
    const other = await createProject(sys.sg, 'authzen-other');
    const otherScope = await other.api.scopes.create({ slug: 'o', name: 'O' });
    const key = await sys.side.ok('POST', '/v1/api-keys', { scopeId: otherScope.accessScopeId, name: 'other' });
    const res = await sys.side.api('POST', '/access/v1/evaluation', { subject: { type: 'user', id: 'alice@acmecorp.com' }, action: { name: 'can_read' }, resource: doc('boxcarring.md') }, key.key);
    expect(res.status).toBe(403);
    const batch = await sys.side.ok('POST', '/access/v1/evaluations', boxcar(), key.key);
    expect(batch.evaluations.every((e: { decision: boolean; context: { error: { status: number } } }) => !e.decision && e.context.error.status === 403)).toBe(true);
  });
});
