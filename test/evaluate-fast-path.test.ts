/**
 * `POST /v1/evaluate`, `POST /v1/broker/connect`, `POST /v1/broker/sessions` and `POST /v1/broker/ledger` are served by a handler in front of Express
 * (authz-sidecar/http/fast-routes.ts); anything with a query string still goes through the Express route.
 * Both must answer alike.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScopeGateClient } from '../client/index.ts';
import { startSidecar, type TestSidecar } from './helpers/sidecar.ts';
import { createActor, createProject } from './helpers/system.ts';

let s: TestSidecar;
let body: Record<string, unknown>;
let actor: { actorId: string; token: string };
beforeAll(async () => {
  s = await startSidecar();
  const tenant = await s.ok('POST', '/v1/tenants', { name: 'Fast', slug: 'fast', kind: 'standard' });
  const role = await s.ok('POST', '/v1/roles', { scopeId: tenant.scopeId, name: 'reader' });
  const perm = await s.ok('POST', '/v1/permissions', { scopeId: tenant.scopeId, action: 'read', resourceType: 'doc' });
  await s.ok('POST', '/v1/role-permissions', { roleId: role.id, permissionId: perm.id });
  const user = await s.ok('POST', '/v1/users', { kindeId: 'kp_fast', email: 'fast@example.com', defaultTenantId: tenant.id });
  const m = await s.ok('POST', '/v1/memberships', { subjectId: user.subjectId, scopeId: tenant.scopeId });
  await s.ok('POST', '/v1/role-assignments', { roleId: role.id, membershipId: m.id });
  body = { actor: { subjectId: user.subjectId, subjectType: 'user' }, scopeId: tenant.scopeId, action: 'read', resource: { resourceType: 'doc' } };
  const { api } = await createProject(new ScopeGateClient({ baseUrl: s.url, token: s.adminToken }), 'fast-mqtt');
  const scope = await api.scopes.create({ slug: 'acme', name: 'Acme' });
  const app = await api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
  actor = await createActor(api, 'device', scope.accessScopeId, [app.appId]);
});
afterAll(() => s?.close());

const both = async (body: unknown, token?: string) => [await s.api('POST', '/v1/evaluate', body, token), await s.api('POST', '/v1/evaluate?explain=false', body, token)] as const;

describe('fast evaluate path and the Express route', () => {
  it('give the same decisions', async () => {
    for (const action of ['read', 'write']) {
      const [fast, express] = await both({ ...body, action });
      expect(fast.status).toBe(200);
      expect(fast.body).toEqual(express.body);
    }
    const [fast] = await both(body);
    expect(fast.body).toMatchObject({ decision: 'ALLOWED' });
  });

  it('give the same errors', async () => {
    const cases: Array<[unknown, string | undefined, number, string]> = [
      ['{not json', undefined, 400, 'INVALID_JSON'],
      [{ ...body, extra: 1 }, undefined, 400, 'VALIDATION_FAILED'],
      [{ ...body, scopeId: 'scope_nope' }, undefined, 404, 'NOT_FOUND'],
      [body, 'wrong-token', 401, 'UNAUTHENTICATED'],
      [{ ...body, consistency: { atLeastAsFresh: 10_000_000 } }, undefined, 503, 'NOT_FRESH_ENOUGH'],
    ];
    for (const [input, token, status, code] of cases) {
      const [fast, express] = await both(input, token);
      expect([fast.status, fast.body?.error?.code]).toEqual([status, code]);
      expect([express.status, express.body?.error?.code]).toEqual([status, code]);
    }
  });

  it('refuses bodies over the limit with 413', async () => {
    const huge = JSON.stringify({ ...body, action: 'x'.repeat(1024 * 1024 + 10) });
    const [fast, express] = await both(huge);
    expect([fast.status, fast.body?.error?.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    expect(express.status).toBe(413);
  });
});

describe('fast connect path and the Express route', () => {
  const connect = async (input: unknown, token = s.brokerToken) => [await s.api('POST', '/v1/broker/connect', input, token), await s.api('POST', '/v1/broker/connect?via=express', input, token)] as const;

  it('give the same decisions', async () => {
    // `revision` and `expiresAt` come from the same store revision and token, so whole answers must match.
    const cases = [
      { clientId: 'c1', username: actor.actorId, password: actor.token },
      { clientId: 'c2', username: actor.actorId, password: 'wrong' },
      { clientId: 'c3', username: 'act_nobody', password: actor.token },
    ];
    const decisions: string[] = [];
    for (const input of cases) {
      const [fast, express] = await connect(input);
      expect(fast.status).toBe(200);
      expect(fast.body).toEqual(express.body);
      decisions.push(`${fast.body.decision}:${fast.body.reason ?? ''}`);
    }
    expect(decisions).toEqual(['allowed:', 'denied:bad_credentials', 'denied:bad_credentials']);
  });

  it('give the same errors', async () => {
    const cases: Array<[unknown, string | undefined, number, string]> = [
      ['{not json', undefined, 400, 'INVALID_JSON'],
      [{ clientId: 'c', username: actor.actorId }, undefined, 400, 'VALIDATION_FAILED'],
      [{ clientId: 'c', username: actor.actorId, password: actor.token }, 'wrong-token', 401, 'UNAUTHENTICATED'],
      [{ clientId: 'c', username: actor.actorId, password: actor.token }, s.adminToken, 401, 'UNAUTHENTICATED'],
    ];
    for (const [input, token, status, code] of cases) {
      const [fast, express] = await connect(input, token);
      expect([fast.status, fast.body?.error?.code]).toEqual([status, code]);
      expect([express.status, express.body?.error?.code]).toEqual([status, code]);
    }
  });
});

describe('fast refresh path and the Express route', () => {
  const refresh = async (input: unknown, token = s.brokerToken) => [await s.api('POST', '/v1/broker/sessions', input, token), await s.api('POST', '/v1/broker/sessions?via=express', input, token)] as const;

  it('give the same grants', async () => {
    const [fast, express] = await refresh({ actorIds: [actor.actorId, 'act_nobody'] });
    expect(fast.status).toBe(200);
    expect(fast.body).toEqual(express.body);
    expect(fast.body.sessions['act_nobody']).toBeNull();
    expect(fast.body.sessions[actor.actorId].actorId).toBe(actor.actorId);
  });

  it('give the same errors', async () => {
    const cases: Array<[unknown, string | undefined, number, string]> = [
      ['{not json', undefined, 400, 'INVALID_JSON'],
      [{ actorIds: 'act_x' }, undefined, 400, 'VALIDATION_FAILED'],
      [{ actorIds: [actor.actorId] }, 'wrong-token', 401, 'UNAUTHENTICATED'],
      [{ actorIds: [actor.actorId] }, s.adminToken, 401, 'UNAUTHENTICATED'],
    ];
    for (const [input, token, status, code] of cases) {
      const [fast, express] = await refresh(input, token);
      expect([fast.status, fast.body?.error?.code]).toEqual([status, code]);
      expect([express.status, express.body?.error?.code]).toEqual([status, code]);
    }
  });
});

describe('fast ledger path and the Express route', () => {
  const report = async (input: unknown, token = s.brokerToken, via = '') => s.api('POST', `/v1/broker/ledger${via}`, input, token);

  it('renew the same lease and hold the same sessions', async () => {
    // Each path reports for its own broker: both leases are new (no sessions known), then known once renewed.
    for (const [brokerId, via] of [['fast-broker', ''], ['express-broker', '?via=express']] as const) {
      const first = await report({ brokerId, leaseMs: 30_000, events: [] }, s.brokerToken, via);
      expect(first.status).toBe(200);
      const second = await report({ brokerId, leaseMs: 30_000, events: [], sync: [] }, s.brokerToken, via);
      expect(second.status).toBe(200);
      const third = await report({ brokerId, leaseMs: 30_000, events: [] }, s.brokerToken, via);
      expect(third.body).toEqual({ known: true, sessions: 0 });
    }
  });

  it('give the same errors', async () => {
    const cases: Array<[unknown, string | undefined, number, string]> = [
      ['{not json', undefined, 400, 'INVALID_JSON'],
      [{ brokerId: 'b', leaseMs: 5, events: [] }, undefined, 400, 'VALIDATION_FAILED'],
      [{ brokerId: 'b', leaseMs: 30_000, events: [] }, 'wrong-token', 401, 'UNAUTHENTICATED'],
      [{ brokerId: 'b', leaseMs: 30_000, events: [] }, s.adminToken, 401, 'UNAUTHENTICATED'],
    ];
    for (const [input, token, status, code] of cases) {
      const fast = await report(input, token);
      const express = await report(input, token, '?via=express');
      expect([fast.status, fast.body?.error?.code]).toEqual([status, code]);
      expect([express.status, express.body?.error?.code]).toEqual([status, code]);
    }
  });
});
