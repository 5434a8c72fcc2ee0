/**
 * Property: bad input of any kind gets a clear error and leaves stored data untouched (SPEC §3, §5).
 *
 * One sidecar over the in-memory store with a small fixture (seed 001's tree, roles, permissions, a user with a
 * membership and a role; seed 000's access scope, actor, app, grant and secret). Then every route of the
 * OpenAPI document is called with fuzzed path parameters (fixture ids, prototype keys, `..`, unicode, very long
 * or broken percent-encodings), fuzzed query strings and fuzzed bodies (fc.anything(), malformed JSON, huge
 * strings, 10,000-deep nesting, control characters, `__proto__`/`constructor` keys, and valid bodies with one
 * field mutated). Every answer must be < 500, every error must be SPEC's JSON error body, every refused request
 * must leave the store (revision, records, audit log) exactly as it was, and nothing may pollute
 * Object.prototype.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSidecar, type TestSidecar } from './helpers/sidecar.ts';

let s: TestSidecar;
let requests = 0;
let successes = 0;
let refusedWritesChecked = 0;
const statusCounts = new Map<number, number>();
const ids: Record<string, string> = {};
let routes: Array<{ method: string; path: string }> = [];
let foreignKey = '';
let foreignTenant = '';
const protoNamesBefore = Object.getOwnPropertyNames(Object.prototype).sort();
const arrayProtoNamesBefore = Object.getOwnPropertyNames(Array.prototype).sort();

interface Sent {
  method: string;
  path: string;
  body?: string;
  headers?: Record<string, string>;
  token?: string | null;
}
interface Answer {
  status: number;
  text: string;
  json: any;
  contentType: string;
}

async function send(req: Sent): Promise<Answer> {
  const headers: Record<string, string> = { ...(req.headers ?? {}) };
  const token = req.token === undefined ? s.adminToken : req.token;
  if (token !== null) headers.authorization ??= `Bearer ${token}`;
  if (req.body !== undefined) headers['content-type'] ??= 'application/json';
  requests++;
  const res = await fetch(`${s.url}${req.path}`, { method: req.method, headers, body: req.body });
  const text = await res.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  statusCounts.set(res.status, (statusCounts.get(res.status) ?? 0) + 1);
  if (res.status < 300) successes++;
  return { status: res.status, text, json, contentType: res.headers.get('content-type') ?? '' };
}

/** SPEC §3: every error is {error: {code: SNAKE_CASE, message, details: []}} and never a 500. */
function expectSpecAnswer(a: Answer, what: string): void {
  const ctx = `${what} → ${a.status} ${a.text.slice(0, 300)}`;
  expect(a.status, ctx).toBeGreaterThanOrEqual(200);
  expect(a.status, ctx).toBeLessThan(500);
  if (a.status >= 400) {
    expect(a.contentType, ctx).toMatch(/application\/json/);
    expect(a.json, ctx).toBeTypeOf('object');
    expect(Object.keys(a.json), ctx).toEqual(['error']);
    expect(a.json.error.code, ctx).toMatch(/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/);
    expect(a.json.error.message, ctx).toBeTypeOf('string');
    expect(a.json.error.message.length, ctx).toBeGreaterThan(0);
    expect(Array.isArray(a.json.error.details), ctx).toBe(true);
    // No internals: no stack traces in what a client sees.
    expect(a.text, ctx).not.toMatch(/\n\s+at |node:internal|node_modules/);
  }
}

/** Everything that must not change when a request is refused: revision, records, audit log. */
async function storeState(): Promise<string> {
  const snap = await s.sidecar.store.snapshot();
  const audit = await s.sidecar.store.audit({ limit: 1 });
  const records = snap.records.map((r) => JSON.stringify(r)).sort();
  return JSON.stringify({ seq: snap.seq, replica: s.sidecar.replica.seq, audit: audit[0]?.seq ?? 0, records });
}

beforeAll(async () => {
  s = await startSidecar();
  const tenant = await s.ok('POST', '/v1/tenants', { name: 'Fuzz Corp', slug: 'fuzz-corp', kind: 'standard', maxUsers: 1000, maxWorkspaces: 1000 });
  const ws = await s.ok('POST', '/v1/workspaces', { tenantId: tenant.id, name: 'Engineering' });
  const project = await s.ok('POST', '/v1/projects', { tenantId: tenant.id, workspaceId: ws.id, name: 'API Service' });
  const env = await s.ok('POST', '/v1/environments', { tenantId: tenant.id, projectId: project.id, name: 'Production' });
  const role = (await s.ok('POST', '/v1/roles/batch', [{ name: 'Developer', scopeId: project.scopeId }])).data[0];
  const perm = (await s.ok('POST', '/v1/permissions/batch', [{ scopeId: project.scopeId, action: 'read', resourceType: '*', resourcePattern: '*', key: '*:read:*' }])).data[0];
  const rp = (await s.ok('POST', '/v1/role-permissions/batch', [{ roleId: role.id, permissionId: perm.id }])).data[0];
  const user = await s.ok('POST', '/v1/users', { kindeId: 'kp_fuzz', email: 'fuzz@example.com', firstName: 'Fuzz', defaultTenantId: tenant.id });
  const membership = await s.ok('POST', '/v1/memberships', { subjectId: user.subjectId, scopeId: project.scopeId });
  const ra = await s.ok('POST', '/v1/role-assignments', { roleId: role.id, membershipId: membership.id });
  const po = await s.ok('POST', '/v1/scope-overrides/permissions', { childScopeId: env.scopeId, permissionId: perm.id, state: 'disabled' });
  const rpo = await s.ok('POST', '/v1/scope-overrides/role-permissions', { childScopeId: env.scopeId, roleId: role.id, permissionId: perm.id, state: 'enabled' });
  await s.ok('POST', '/v1/scope-types/batch', [{ id: 'type_site', name: 'Site' }]);
  const edge = (await s.ok('POST', '/v1/scope-type-hierarchy/batch', [{ parentTypeId: 'type_environment', childTypeId: 'type_site' }])).data[0];
  const site = await s.ok('POST', '/v1/scopes', { parentScopeId: env.scopeId, typeId: 'type_site', slug: 'tower', name: 'Tower' });
  const base = `/v1/organizations/${tenant.id}/projects/${project.id}`;
  const access = await s.ok('POST', `${base}/scopes`, { slug: 'acme-corp', name: 'Acme Corp' });
  const actor = await s.ok('POST', `${base}/actors`, { name: 'sensor', accessScopeId: access.accessScopeId });
  const app = await s.ok('POST', `${base}/apps`, { slug: 'my-app', name: 'My App' });
  await s.ok('POST', `${base}/apps/${app.appId}/actors`, { actorId: actor.actorId });
  const secret = await s.ok('POST', `${base}/actors/${actor.actorId}/secrets`);
  const key = await s.ok('POST', '/v1/api-keys', { scopeId: tenant.scopeId, name: 'fuzz key' });
  // Another tenant, with its own key: used to fuzz the fixture tenant from outside.
  const foreign = await s.ok('POST', '/v1/tenants', { name: 'Outsider', slug: 'outsider' });
  const foreignWs = await s.ok('POST', '/v1/workspaces', { tenantId: foreign.id, name: 'Outside' });
  await s.ok('POST', '/v1/projects', { tenantId: foreign.id, workspaceId: foreignWs.id, name: 'Outside' });
  foreignKey = (await s.ok('POST', '/v1/api-keys', { scopeId: foreign.scopeId, name: 'outsider key' })).key;
  foreignTenant = foreign.id;
  Object.assign(ids, {
    tenant: tenant.id,
    tenantScope: tenant.scopeId,
    workspace: ws.id,
    project: project.id,
    projectScope: project.scopeId,
    environment: env.id,
    envScope: env.scopeId,
    role: role.id,
    permission: perm.id,
    rolePermission: rp.id,
    user: user.id,
    userSubject: user.subjectId,
    membership: membership.id,
    roleAssignment: ra.id,
    permissionOverride: po.id,
    rolePermissionOverride: rpo.id,
    scopeType: 'type_site',
    edge: edge.id,
    site: site.id,
    access: access.accessScopeId,
    actor: actor.actorId,
    actorSubject: actor.subjectId,
    app: app.appId,
    secret: secret.secretId,
    apiKey: key.id,
  });
  const doc = await s.ok('GET', '/v1/openapi.json');
  for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
    for (const method of Object.keys(ops)) routes.push({ method: method.toUpperCase(), path });
  }
  routes = routes.sort((a, b) => `${a.method} ${a.path}`.localeCompare(`${b.method} ${b.path}`));
});

afterAll(async () => {
  const byStatus = [...statusCounts.entries()].sort(([a], [b]) => a - b).map(([k, v]) => `${k}:${v}`).join(' ');
  console.log(`http-fuzz: ${requests} requests sent (${successes} answered 2xx, ${refusedWritesChecked} refused requests checked for an unchanged store); statuses ${byStatus}`);
  await s?.close();
});

// ---------------------------------------------------------------------------------------------------------
// Arbitraries

const DEEP = 10_000;
const deepArray = '['.repeat(DEEP) + ']'.repeat(DEEP);
const deepObject = '{"a":'.repeat(DEEP) + '1' + '}'.repeat(DEEP);
const deepProto = '{"__proto__":'.repeat(DEEP) + '{"polluted":"yes"}' + '}'.repeat(DEEP);
const hugeString = JSON.stringify({ name: 'x'.repeat(900_000) });
const hugeArray = `[${'{"name":"a"},'.repeat(60_000)}{"name":"a"}]`;

const controlString = fc.string({ unit: fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 20 });
const prototypeKeys = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__'];

/** Ids that could confuse a lookup: prototype keys, traversal, unicode, lengths, and the fixture's own ids. */
const fuzzId = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...prototypeKeys, '..', '.', '%2e%2e', '..%2f..%2fetc%2fpasswd', '', ' ', 'null', 'undefined', '0', '-1', 'NaN', '*', '#', '+', '$SYS') },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 30 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 10 }) },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 20_000 }).map((n) => 'a'.repeat(n)) },
  { weight: 1, arbitrary: fc.constantFrom('tenant_', 'scope_tenant_x', 'actor_zzzzzzzzzzzzzzzz', 'subject_actor_x', 'type_tenant', 'type_access') },
  { weight: 1, arbitrary: controlString },
);
/** Built lazily: the fixture exists only once beforeAll has run. */
const fixtureId = fc.constant(null).chain(() => fc.constantFrom(...Object.values(ids)));

/** A path parameter as it is put into the URL: encoded, or raw (broken percent-encodings, `..`). */
const pathParam = (preferred: () => string | undefined) =>
  fc.oneof(
    { weight: 5, arbitrary: fc.constant(null).map(() => ({ raw: false, value: preferred() ?? ids.tenant! })) },
    { weight: 3, arbitrary: fixtureId.map((value) => ({ raw: false, value })) },
    { weight: 4, arbitrary: fuzzId.map((value) => ({ raw: false, value })) },
    { weight: 1, arbitrary: fc.constantFrom('%', '%E0%A4%A', '%ED%A0%80', '%00', '%C0%AE%C0%AE', '..', '%2F', '..;', '%uFFFF').map((value) => ({ raw: true, value })) },
  );

function encode(p: { raw: boolean; value: string }): string {
  if (p.raw) return p.value;
  try {
    return encodeURIComponent(p.value);
  } catch {
    return '%ED%A0%80'; // a lone surrogate, as its (invalid) UTF-8 bytes
  }
}

/** Which fixture id a path parameter of this route most likely wants. */
function preferredId(path: string, name: string): string | undefined {
  if (name === 'orgId') return ids.tenant;
  if (name === 'projectId') return ids.project;
  if (name === 'scopeId') return ids.access;
  if (name === 'actorId') return ids.actor;
  if (name === 'appId') return ids.app;
  if (name === 'secretId') return ids.secret;
  const table: Array<[string, string]> = [
    ['/v1/tenants/', 'tenant'],
    ['/v1/workspaces/', 'workspace'],
    ['/v1/projects/', 'project'],
    ['/v1/environments/', 'environment'],
    ['/v1/scopes/', 'site'],
    ['/v1/scope-types/', 'scopeType'],
    ['/v1/scope-type-hierarchy/', 'edge'],
    ['/v1/roles/', 'role'],
    ['/v1/permissions/', 'permission'],
    ['/v1/role-permissions/', 'rolePermission'],
    ['/v1/users/', 'user'],
    ['/v1/memberships/', 'membership'],
    ['/v1/role-assignments/', 'roleAssignment'],
    ['/v1/scope-overrides/permissions/', 'permissionOverride'],
    ['/v1/scope-overrides/role-permissions/', 'rolePermissionOverride'],
    ['/v1/api-keys/', 'apiKey'],
  ];
  for (const [prefix, key] of table) if (path.startsWith(prefix)) return ids[key];
  return undefined;
}

/** Valid bodies per route; the fuzzer mutates one field of these so requests reach the service layer. */
function template(method: string, path: string): unknown {
  const t = (k: string) => ids[k]!;
  const key = `${method} ${path.replace(/\{[^}]+\}/g, '{}')}`;
  const table: Record<string, () => unknown> = {
    'POST /v1/tenants': () => ({ name: 'T', slug: 'fz-t', kind: 'standard' }),
    'PATCH /v1/tenants/{}': () => ({ name: 'Renamed', maxUsers: 1000 }),
    'POST /v1/workspaces': () => ({ tenantId: t('tenant'), name: 'W' }),
    'POST /v1/projects': () => ({ tenantId: t('tenant'), workspaceId: t('workspace'), name: 'P' }),
    'POST /v1/environments': () => ({ tenantId: t('tenant'), projectId: t('project'), name: 'E' }),
    'POST /v1/scopes': () => ({ parentScopeId: t('envScope'), typeId: 'type_site', name: 'S', slug: 'fz-s' }),
    'POST /v1/scope-types/batch': () => [{ id: 'type_fz', name: 'Fz', config: { permissionMode: 'define' } }],
    'PATCH /v1/scope-types/{}': () => ({ name: 'Site 2' }),
    'POST /v1/scope-type-hierarchy/batch': () => [{ parentTypeId: 'type_site', childTypeId: 'type_site' }],
    'POST /v1/roles': () => ({ scopeId: t('projectScope'), name: 'R' }),
    'POST /v1/roles/batch': () => [{ scopeId: t('projectScope'), name: 'R1' }, { scopeId: t('projectScope'), name: 'R2' }],
    'PATCH /v1/roles/{}': () => ({ name: 'Dev', description: 'd' }),
    'POST /v1/permissions': () => ({ scopeId: t('projectScope'), action: 'write', resourceType: 'doc', resourcePattern: '*' }),
    'POST /v1/permissions/batch': () => [{ scopeId: t('projectScope'), action: 'write', resourceType: 'doc' }, { scopeId: t('envScope'), action: 'deploy', resourceType: 'environment' }],
    'POST /v1/role-permissions': () => ({ roleId: t('role'), permissionId: t('permission') }),
    'POST /v1/role-permissions/batch': () => [{ roleId: t('role'), permissionId: t('permission') }],
    'POST /v1/users': () => ({ kindeId: 'kp_x', email: 'x@example.com', defaultTenantId: t('tenant') }),
    'PATCH /v1/users/{}': () => ({ firstName: 'F', defaultTenantId: t('tenant') }),
    'POST /v1/memberships': () => ({ subjectId: t('actorSubject'), scopeId: t('access') }),
    'POST /v1/role-assignments': () => ({ roleId: t('role'), membershipId: t('membership') }),
    'POST /v1/scope-overrides/permissions': () => ({ childScopeId: t('site'), permissionId: t('permission'), state: 'disabled' }),
    'POST /v1/scope-overrides/role-permissions': () => ({ childScopeId: t('site'), roleId: t('role'), permissionId: t('permission'), state: 'disabled' }),
    'POST /v1/evaluate': () => ({ actor: { subjectId: t('userSubject'), subjectType: 'user' }, scopeId: t('envScope'), action: 'read', resource: { resourceType: 'doc', resourceId: 'a/b' } }),
    'POST /v1/evaluate/batch': () => ({ requests: [{ actor: { subjectId: t('userSubject'), subjectType: 'user' }, scopeId: t('envScope'), action: 'read', resource: { resourceType: 'doc' } }] }),
    'POST /v1/api-keys': () => ({ scopeId: t('projectScope'), name: 'k' }),
    'POST /v1/broker/connect': () => ({ clientId: 'c', username: t('actor'), password: 'sgs_000000000000_' + 'A'.repeat(43), remoteAddress: '10.9.8.7' }),
    'POST /v1/broker/sessions': () => ({ actorIds: [t('actor')] }),
    'POST /v1/organizations/{}/projects/{}/scopes': () => ({ slug: 'fz-a', name: 'A', parentScopeId: t('access') }),
    'PATCH /v1/organizations/{}/projects/{}/scopes/{}': () => ({ name: 'Acme' }),
    'POST /v1/organizations/{}/projects/{}/actors': () => ({ name: 'a', kind: 'agent', accessScopeId: t('access') }),
    'PATCH /v1/organizations/{}/projects/{}/actors/{}': () => ({ accessScopeId: t('access'), disabled: false }),
    'POST /v1/organizations/{}/projects/{}/actors/{}/tokens': () => ({ ttlSeconds: 60 }),
    'POST /v1/organizations/{}/projects/{}/apps': () => ({ slug: 'fz-app', name: 'App', mode: 'rbac' }),
    'PATCH /v1/organizations/{}/projects/{}/apps/{}': () => ({ mode: 'open' }),
    'POST /v1/organizations/{}/projects/{}/apps/{}/actors': () => ({ actorId: t('actor') }),
  };
  return table[key]?.() ?? {};
}

/** A JSON value that could break a handler: prototype keys, odd numbers, huge or control-character strings. */
const nastyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1e308, -0, 2 ** 53 + 1, 1.5, '', ' ', '*', '#', '$SYS/#', '../..', '__proto__', 'constructor'),
  fc.constantFrom({ __proto__: null, polluted: 'yes' }, JSON.parse('{"__proto__":{"polluted":"yes"}}'), { constructor: { prototype: { polluted: 'yes' } } }, [], {}, [[]], ['a']),
  controlString,
  fc.string({ unit: 'grapheme', maxLength: 50 }),
  fc.integer({ min: 150, max: 3000 }).map((n) => 'x'.repeat(n)),
  fuzzId,
  fixtureId,
  fc.jsonValue({ maxDepth: 3 }),
);

function mutate(value: unknown, choice: number, replacement: unknown, protoKey: string): unknown {
  if (Array.isArray(value)) {
    if (value.length === 0) return [replacement];
    const i = choice % (value.length + 1);
    if (i === value.length) return [...value, replacement];
    return value.map((v, j) => (j === i ? mutate(v, Math.floor(choice / 3), replacement, protoKey) : v));
  }
  if (value && typeof value === 'object') {
    const entries = Object.entries(value);
    const op = choice % 4;
    const out: Record<string, unknown> = {};
    for (const [k, v] of entries) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
    const target = entries[Math.floor(choice / 4) % Math.max(1, entries.length)]?.[0];
    if (op === 0 && target !== undefined) Object.defineProperty(out, target, { value: replacement, enumerable: true, writable: true, configurable: true });
    else if (op === 1 && target !== undefined) delete out[target];
    else if (op === 2) Object.defineProperty(out, protoKey, { value: replacement, enumerable: true, writable: true, configurable: true });
    else if (target !== undefined) Object.defineProperty(out, target, { value: mutate(out[target], Math.floor(choice / 16), replacement, protoKey), enumerable: true, writable: true, configurable: true });
    else Object.defineProperty(out, protoKey, { value: replacement, enumerable: true, writable: true, configurable: true });
    return out;
  }
  return replacement;
}

/** A request body as raw text, or undefined for none. */
const bodyFor = (method: string, path: string): fc.Arbitrary<string | undefined> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.tuple(fc.nat(), nastyValue, fc.constantFrom(...prototypeKeys, 'extra')).map(([c, v, k]) => JSON.stringify(mutate(template(method, path), c, v, k))) },
    { weight: 1, arbitrary: fc.constant(null).map(() => JSON.stringify(template(method, path))) },
    { weight: 3, arbitrary: fc.anything({ maxDepth: 4 }).map((v) => JSON.stringify(v) as string | undefined) },
    { weight: 1, arbitrary: fc.constant(undefined) },
    {
      weight: 2,
      arbitrary: fc.oneof(
        fc.string({ maxLength: 40 }),
        fc.string({ unit: 'binary', maxLength: 40 }),
        fc.jsonValue().map((v) => JSON.stringify(v).slice(0, -1)),
        fc.constantFrom('{', '}', '[', '{"a":}', '{"a" 1}', "{'a':1}", 'nul', 'undefined', 'NaN', '{"a":1,}', '\u0000', '\uFEFF{}', '{"__proto__":', '[1,2', '"\\ud800"', '{"a":"\\u00"}', '1e999999'),
      ),
    },
    { weight: 1, arbitrary: fc.constantFrom(deepArray, deepObject, deepProto, hugeString, hugeArray) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        '{"__proto__":{"polluted":"yes"}}',
        '{"constructor":{"prototype":{"polluted":"yes"}}}',
        '[{"__proto__":{"polluted":"yes"}}]',
        '{"name":"x","__proto__":{"isAdmin":true}}',
        '{"requests":[{"__proto__":{"polluted":"yes"}}]}',
        '{"actor":{"__proto__":{"subjectId":"x"}},"constructor":1}',
      ),
    },
  );

/** A query string: mostly none, sometimes the routes' own parameters with odd values. */
const queryArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant('') },
  {
    weight: 2,
    arbitrary: fc
      .array(
        fc.tuple(
          fc.constantFrom('limit', 'cursor', 'cascade', 'explain', 'before', 'tenantId', 'scopeId', 'slug', '__proto__', 'constructor', 'limit[]', 'a[b]'),
          fc.oneof(fc.constantFrom('-1', '0', '1', '1001', '1e9', 'true', 'false', 'TRUE', '', 'NaN', '__proto__', '%', '%00'), fuzzId.map((v) => encode({ raw: false, value: v }))),
        ),
        { maxLength: 4 },
      )
      .map((pairs) => `?${pairs.map(([k, v]) => `${encodeURIComponent(k)}=${v}`).join('&')}`),
  },
);

/** One request against one documented route, with everything fuzzed. */
const requestArb = fc
  .constant(null)
  .chain(() => fc.constantFrom(...routes))
  .chain((route) => {
    const names = [...route.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
    return fc.record({
      route: fc.constant(route),
      params: fc.tuple(...names.map((n) => pathParam(() => preferredId(route.path, n)))),
      query: queryArb,
      body: route.method === 'GET' ? fc.constant(undefined) : bodyFor(route.method, route.path),
      contentType: fc.constantFrom('application/json', 'application/json', 'application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=utf-16', 'application/octet-stream'),
    });
  });

// ---------------------------------------------------------------------------------------------------------

describe('HTTP fuzz: every documented route, random input', () => {
  it('never answers 500, always answers errors in SPEC format, and leaves the store untouched on refusal', async () => {
    expect(routes.length).toBeGreaterThan(50);
    await fc.assert(
      fc.asyncProperty(requestArb, async ({ route, params, query, body, contentType }) => {
        // The change feed streams forever with the broker token; it is exercised with the admin token (401).
        const broker = route.path.startsWith('/v1/broker/') && route.path !== '/v1/broker/changes';
        let i = 0;
        const path = route.path.replace(/\{[^}]+\}/g, () => encode(params[i++]!)) + query;
        const before = await storeState();
        const a = await send({
          method: route.method,
          path,
          ...(body === undefined ? {} : { body, headers: { 'content-type': contentType } }),
          token: broker ? s.brokerToken : s.adminToken,
        });
        expectSpecAnswer(a, `${route.method} ${path.slice(0, 200)} body=${(body ?? '').slice(0, 200)}`);
        if (a.status >= 400 || route.method === 'GET') {
          if (a.status >= 400) refusedWritesChecked++;
          expect(await storeState(), `${route.method} ${path.slice(0, 200)} → ${a.status} changed the store`).toBe(before);
        }
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      }),
      { numRuns: 5000, seed: Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31), verbose: 1 },
    );
    // Still up and answering (the fixture tenant itself may be gone: a fuzzed DELETE …?cascade=true with the
    // admin token and a valid id is a legitimate write).
    expect((await send({ method: 'GET', path: '/healthz', token: null })).status).toBe(200);
    expect((await send({ method: 'GET', path: '/v1/tenants?limit=1' })).status).toBe(200);
  }, 120_000);

  it("another tenant's API key never sees or changes anything of the fixture tenant", async () => {
    const secretPart = ids.tenant!.slice('tenant_'.length);
    const recordsOf = async () =>
      new Map((await s.sidecar.store.snapshot()).records.filter((r) => r.tenantId === ids.tenant || r.kind === 'user').map((r) => [r.id, JSON.stringify(r)]));
    await fc.assert(
      fc.asyncProperty(requestArb, async ({ route, params, query, body }) => {
        if (route.path.startsWith('/v1/broker/')) return;
        let i = 0;
        const path = route.path.replace(/\{[^}]+\}/g, () => encode(params[i++]!)) + query;
        const before = await recordsOf();
        const a = await send({ method: route.method, path, ...(body === undefined ? {} : { body }), token: foreignKey });
        const what = `${route.method} ${path.slice(0, 200)} body=${(body ?? '').slice(0, 200)}`;
        expectSpecAnswer(a, what);
        // Nothing of the fixture tenant in any answer (its id is part of every one of its scope ids)... except
        // where the earlier root-token fuzzing wrote that id into a global record (a scope type's name, say),
        // which every key may read.
        const globalRoutes = ['/v1/scope-types', '/v1/scope-type-hierarchy'];
        const inGlobalRecord = globalRoutes.some((g) => route.path.startsWith(g)) && (await s.sidecar.store.snapshot()).records.some((r) => r.tenantId === null && r.kind !== 'user' && JSON.stringify(r).includes(secretPart));
        if (a.status < 400 && route.path !== '/v1/openapi.json' && !inGlobalRecord) expect(a.text.includes(secretPart), `${what} → ${a.status} shows the fixture tenant`).toBe(false);
        // ...and none of its records (or any user) changed.
        expect([...(await recordsOf()).entries()], `${what} → ${a.status} changed the fixture tenant`).toEqual([...before.entries()]);
      }),
      { numRuns: 1200 },
    );
    expect(foreignTenant).toMatch(/^tenant_/);
  }, 60_000);

  it('unknown routes and methods answer 404/405 in SPEC format', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'),
        fc.array(fc.oneof(fuzzId, fc.constantFrom('v1', 'tenants', 'organizations', 'broker', '.well-known')), { minLength: 1, maxLength: 5 }),
        async (method, segments) => {
          const path = '/' + segments.map((v) => encode({ raw: false, value: v })).join('/');
          const a = await send({ method, path, ...(method === 'GET' ? {} : { body: '{}' }) });
          expectSpecAnswer(a, `${method} ${path.slice(0, 200)}`);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refused batches are all-or-nothing: a batch with one bad item changes nothing', async () => {
    const batches: Array<[string, (bad: unknown) => unknown[]]> = [
      ['/v1/roles/batch', (bad) => [{ scopeId: ids.projectScope, name: 'OK role' }, { scopeId: bad, name: 'Bad' }]],
      ['/v1/permissions/batch', (bad) => [{ scopeId: ids.projectScope, action: 'ok', resourceType: 'doc' }, { scopeId: ids.projectScope, action: bad, resourceType: 'doc' }]],
      ['/v1/role-permissions/batch', (bad) => [{ roleId: ids.role, permissionId: ids.permission }, { roleId: ids.role, permissionId: bad }]],
      ['/v1/scope-types/batch', (bad) => [{ id: 'type_okbatch', name: 'OK' }, { id: bad, name: 'Bad' }]],
      ['/v1/scope-type-hierarchy/batch', (bad) => [{ parentTypeId: 'type_site', childTypeId: 'type_access' }, { parentTypeId: 'type_site', childTypeId: bad }]],
    ];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...batches), fc.oneof(fuzzId, fixtureId, fc.constantFrom('perm_doesnotexist', 'scope_doesnotexist', 'type_doesnotexist')), async ([path, build], bad) => {
        const before = await storeState();
        const a = await send({ method: 'POST', path, body: JSON.stringify(build(bad)) });
        expectSpecAnswer(a, `POST ${path} bad=${JSON.stringify(bad).slice(0, 100)}`);
        if (a.status >= 400) {
          refusedWritesChecked++;
          expect(await storeState()).toBe(before);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('concurrent garbage does not take the process down', async () => {
    const bodies = fc.sample(bodyFor('POST', '/v1/tenants'), 200);
    const answers = await Promise.all(bodies.map((body, i) => send({ method: i % 2 ? 'POST' : 'PATCH', path: i % 2 ? '/v1/tenants' : `/v1/tenants/${ids.tenant}`, ...(body === undefined ? {} : { body }) })));
    for (const a of answers) expectSpecAnswer(a, 'concurrent');
    expect((await send({ method: 'GET', path: '/healthz', token: null })).status).toBe(200);
  });
});

describe('HTTP edge cases, by hand', () => {
  it('a body over the limit → 413 PAYLOAD_TOO_LARGE, nothing stored', async () => {
    const before = await storeState();
    for (const body of [JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024) }), `[${'{"name":"x"},'.repeat(200_000)}{}]`]) {
      for (const path of ['/v1/tenants', '/v1/roles/batch', `/v1/organizations/${ids.tenant}/projects/${ids.project}/actors`]) {
        const a = await send({ method: 'POST', path, body });
        expectSpecAnswer(a, `POST ${path} huge`);
        expect(a.status).toBe(413);
        expect(a.json.error.code).toBe('PAYLOAD_TOO_LARGE');
      }
    }
    expect(await storeState()).toBe(before);
  });

  it('invalid JSON → 400 INVALID_JSON', async () => {
    for (const body of ['{', '{"name": "x",}', "{'name':'x'}", 'nul', '\u0000', '{"a":"\\u00zz"}']) {
      const a = await send({ method: 'POST', path: '/v1/tenants', body });
      expectSpecAnswer(a, `invalid json ${JSON.stringify(body)}`);
      expect(a.status).toBe(400);
      expect(a.json.error.code).toBe('INVALID_JSON');
    }
  });

  it('JSON that is not an object, or is too deep, → 400 in SPEC format', async () => {
    for (const body of ['"just a string"', '42', 'null', 'true', deepArray, deepObject, deepProto]) {
      const a = await send({ method: 'POST', path: '/v1/tenants', body });
      expectSpecAnswer(a, `non-object ${body.slice(0, 30)}`);
      expect(a.status).toBe(400);
    }
  });

  it('wrong content types and encodings are refused cleanly', async () => {
    const cases: Array<Record<string, string>> = [
      { 'content-type': 'text/plain' },
      { 'content-type': 'application/x-www-form-urlencoded' },
      { 'content-type': 'multipart/form-data; boundary=xyz' },
      { 'content-type': 'application/json; charset=latin1' },
      { 'content-type': 'application/json; charset=utf-16' },
      { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      { 'content-type': 'application/json', 'content-encoding': 'br' },
      { 'content-type': 'application/json', 'content-encoding': 'x-unknown' },
      { 'content-type': '' },
    ];
    const before = await storeState();
    for (const headers of cases) {
      for (const body of ['name=x&slug=y', '--xyz\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--xyz--', '\u00ff\u00fe{']) {
        const a = await send({ method: 'POST', path: '/v1/tenants', body, headers });
        expectSpecAnswer(a, `POST /v1/tenants ${JSON.stringify(headers)}`);
        expect(a.status).toBeGreaterThanOrEqual(400);
      }
    }
    expect(await storeState()).toBe(before);
  });

  it('a body on a request that declares none, and an empty body on one that needs one', async () => {
    const a = await send({ method: 'POST', path: '/v1/tenants', body: '' });
    expectSpecAnswer(a, 'empty body');
    expect(a.status).toBe(400);
    const b = await send({ method: 'DELETE', path: '/v1/tenants/tenant_doesnotexist', body: '{"cascade":true}' });
    expectSpecAnswer(b, 'delete with body');
    expect(b.status).toBe(404);
  });

  it('missing or garbage bearer → 401 UNAUTHENTICATED on every protected route', async () => {
    const headersList: Array<string | null> = [
      null,
      '',
      'Bearer',
      'Bearer ',
      'bearer',
      'Basic dGVzdDp0ZXN0',
      `Basic ${s.adminToken}`,
      `Token ${s.adminToken}`,
      `Bearer ${s.adminToken}x`,
      `Bearer ${s.adminToken.slice(0, -1)}`,
      `Bearer ${s.adminToken} ${s.adminToken}`,
      `Bearer ${s.adminToken.toUpperCase()}`,
      'Bearer sgk_',
      'Bearer sgk_garbage',
      `Bearer ${'a'.repeat(10_000)}`,
      'Bearer \u00e9\u00e8',
      `Bearer ${s.brokerToken}`,
    ];
    const targets = routes.filter((r) => r.path.startsWith('/v1/') && r.path !== '/v1/openapi.json');
    for (const header of headersList) {
      for (const route of targets) {
        if (route.path === '/v1/broker/changes' && header === `Bearer ${s.brokerToken}`) continue;
        if (route.path.startsWith('/v1/broker/') && header === `Bearer ${s.brokerToken}`) continue;
        const path = route.path.replace(/\{[^}]+\}/g, (m) => preferredId(route.path, m.slice(1, -1)) ?? ids.tenant!);
        const a = await send({
          method: route.method,
          path,
          token: null,
          headers: header === null ? {} : { authorization: header },
          ...(route.method === 'GET' ? {} : { body: JSON.stringify(template(route.method, route.path)) }),
        });
        expectSpecAnswer(a, `${route.method} ${path} auth=${(header ?? '(none)').slice(0, 40)}`);
        expect(a.status, `${route.method} ${path} auth=${(header ?? '(none)').slice(0, 40)}`).toBe(401);
        expect(a.json.error.code).toBe('UNAUTHENTICATED');
      }
    }
  });

  it('malformed percent-encodings in the path → 4xx in SPEC format', async () => {
    for (const bad of ['%', '%E0%A4%A', '%ED%A0%80', '%C0%AE', '%FF', '%zz']) {
      for (const path of [`/v1/tenants/${bad}`, `/v1/organizations/${bad}/projects/${ids.project}/actors`, `/v1/organizations/${ids.tenant}/projects/${ids.project}/actors/${bad}/tokens`]) {
        for (const method of ['GET', 'PATCH', 'DELETE', 'POST']) {
          const a = await send({ method, path, ...(method === 'GET' ? {} : { body: '{}' }) });
          expectSpecAnswer(a, `${method} ${path}`);
          expect(a.status).toBeGreaterThanOrEqual(400);
        }
      }
    }
  });

  it('a client that sends half a body and hangs up does not hurt the process', async () => {
    const net = await import('node:net');
    const { port } = new URL(s.url);
    for (let i = 0; i < 20; i++) {
      await new Promise<void>((resolve) => {
        const sock = net.connect(Number(port), '127.0.0.1', () => {
          sock.write(`POST /v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.adminToken}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"name":"half`);
          setTimeout(() => {
            sock.destroy();
            resolve();
          }, 5);
        });
        sock.on('error', () => resolve());
      });
      requests++;
    }
    expect((await send({ method: 'GET', path: '/healthz', token: null })).status).toBe(200);
  });

  it('Object.prototype and Array.prototype are not polluted by anything sent', () => {
    const probe = {} as Record<string, unknown>;
    for (const k of ['polluted', 'isAdmin', 'subjectId', 'name']) {
      expect(probe[k], k).toBeUndefined();
      expect(([] as unknown as Record<string, unknown>)[k], k).toBeUndefined();
    }
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(protoNamesBefore);
    expect(Object.getOwnPropertyNames(Array.prototype).sort()).toEqual(arrayProtoNamesBefore);
  });
});
