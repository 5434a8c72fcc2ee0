/**
 * `GET /v1/audit` filters server-side (issue 15): who (`principal`), what (`action`, exact or a prefix ending in
 * '*') and when (`since`/`until`, inclusive ISO 8601 instants), with the existing `tenantId`, `limit` and
 * `before`. An API key still sees only its own subtree. Bad values answer 400 VALIDATION_FAILED, never a 500.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSidecar, type TestSidecar } from './helpers/sidecar.ts';

interface Entry {
  seq: number;
  principal: string;
  action: string;
  at: string;
  tenantIds: string[];
  after: Array<{ id: string }>;
}

let s: TestSidecar;
let base: string;
let keyId: string;
let key: string;
const id: Record<string, string> = {};
let all: Entry[];

const audit = async (query: string, token?: string): Promise<{ data: Entry[]; nextBefore: number | null }> => s.ok('GET', `/v1/audit?limit=1000${query}`, undefined, token);

beforeAll(async () => {
  s = await startSidecar();
  const tenant = await s.ok('POST', '/v1/tenants', { name: 'Audit filters', slug: 'audit-filters' });
  const ws = await s.ok('POST', '/v1/workspaces', { tenantId: tenant.id, name: 'Main' });
  const project = await s.ok('POST', '/v1/projects', { workspaceId: ws.id, name: 'Messaging' });
  base = `/v1/organizations/${tenant.id}/projects/${project.id}`;
  id.one = (await s.ok('POST', `${base}/scopes`, { slug: 'one', name: 'One' })).accessScopeId;
  id.two = (await s.ok('POST', `${base}/scopes`, { slug: 'two', name: 'Two' })).accessScopeId;
  const issued = await s.ok('POST', '/v1/api-keys', { scopeId: id.one, name: 'customer one' });
  key = issued.key;
  keyId = issued.id;
  // The key writes in its own subtree; the admin writes in both.
  id.keyScope = (await s.ok('POST', `${base}/scopes`, { slug: 'by-key', name: 'By key', parentScopeId: id.one }, key)).accessScopeId;
  id.adminScope = (await s.ok('POST', `${base}/scopes`, { slug: 'by-admin', name: 'By admin', parentScopeId: id.two })).accessScopeId;
  await s.ok('PATCH', `${base}/scopes/${id.adminScope}`, { name: 'By admin, renamed' });
  await s.ok('PATCH', `${base}/scopes/${id.keyScope}`, { name: 'By key, renamed' }, key);
  all = (await audit('')).data;
});
afterAll(() => s?.close());

describe('GET /v1/audit filters', () => {
  it('who: only the entries a principal wrote', async () => {
    const byKey = (await audit(`&principal=${keyId}`)).data;
    expect(byKey.map((e) => e.action)).toEqual(['access_scope.update', 'access_scope.create']);
    expect(byKey.every((e) => e.principal === keyId)).toBe(true);
    const byAdmin = (await audit('&principal=admin')).data;
    expect(byAdmin.length).toBe(all.filter((e) => e.principal === 'admin').length);
    expect(byAdmin.some((e) => e.principal !== 'admin')).toBe(false);
  });

  it('what: an exact action, or every action with a prefix', async () => {
    const updates = (await audit('&action=access_scope.update')).data;
    expect(updates.map((e) => e.after[0]!.id)).toEqual([id.keyScope, id.adminScope]);
    const scopeWrites = (await audit('&action=access_scope.*')).data;
    // The two customer scopes, the two made in them, and the two renames.
    expect(scopeWrites.map((e) => e.action).sort()).toEqual(['access_scope.create', 'access_scope.create', 'access_scope.create', 'access_scope.create', 'access_scope.update', 'access_scope.update']);
    expect((await audit('&action=access_scope')).data).toEqual([]); // no prefix without '*'
    expect((await audit('&action=tenant.*')).data.map((e) => e.action)).toEqual(['tenant.create']);
    // Combined with who.
    expect((await audit(`&action=access_scope.update&principal=${keyId}`)).data.map((e) => e.after[0]!.id)).toEqual([id.keyScope]);
  });

  it('when: since and until are inclusive instants', async () => {
    const oldest = all.at(-1)!;
    const newest = all[0]!;
    expect((await audit(`&since=${encodeURIComponent(newest.at)}`)).data.map((e) => e.seq)).toEqual(all.filter((e) => e.at >= newest.at).map((e) => e.seq));
    expect((await audit(`&until=${encodeURIComponent(oldest.at)}`)).data.map((e) => e.seq)).toEqual(all.filter((e) => e.at <= oldest.at).map((e) => e.seq));
    const later = new Date(Date.parse(newest.at) + 60_000).toISOString();
    expect((await audit(`&since=${later}`)).data).toEqual([]);
    const earlier = new Date(Date.parse(oldest.at) - 60_000).toISOString();
    expect((await audit(`&until=${earlier}`)).data).toEqual([]);
    // A time zone offset is accepted: the same instant as UTC.
    const shifted = new Date(Date.parse(oldest.at) - 1).toISOString().replace('Z', '+00:00');
    expect((await audit(`&since=${encodeURIComponent(shifted)}`)).data).toHaveLength(all.length);
  });

  it('pages with before and limit through the filtered entries, newest first', async () => {
    const want = (await audit('&action=access_scope.*')).data.map((e) => e.seq);
    expect(want).toHaveLength(6);
    const seen: number[] = [];
    let before: number | null = null;
    do {
      const page: { data: Entry[]; nextBefore: number | null } = await s.ok('GET', `/v1/audit?limit=1&action=access_scope.*${before ? `&before=${before}` : ''}`);
      seen.push(...page.data.map((e) => e.seq));
      before = page.nextBefore;
    } while (before !== null);
    expect(seen).toEqual(want);
  });

  it("an API key still sees only its own subtree, whatever it filters on", async () => {
    const asKey = (await audit('&action=access_scope.*', key)).data;
    // Its own writes and the admin's creation of its scope; nothing of the sibling scope Two.
    expect(asKey.map((e) => e.after[0]!.id)).toEqual([id.keyScope, id.keyScope, id.one]);
    const text = JSON.stringify(await audit('&principal=admin', key));
    expect(text).not.toContain(id.adminScope);
    expect(text).not.toContain(id.two);
  });

  it('bad values answer 400 VALIDATION_FAILED with the field, never a 500', async () => {
    const cases: Array<[string, string]> = [
      ['since=yesterday', 'query.since'],
      ['until=2026-13-01T00:00:00Z', 'query.until'],
      ['since=2026-12-01T10:00:00', 'query.since'], // no time zone
      ['since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z', 'query.since'],
      ['principal=two%20words', 'query.principal'],
      ['principal=', 'query.principal'],
      ['action=actor.*.x', 'query.action'],
      ['action=%00', 'query.action'],
      [`principal=${'k'.repeat(200)}`, 'query.principal'],
      ['principal=a&principal=b', 'query.principal'],
    ];
    for (const [query, path] of cases) {
      const r = await s.api('GET', `/v1/audit?${query}`);
      expect(r.status, query).toBe(400);
      expect(r.body.error.code, query).toBe('VALIDATION_FAILED');
      expect(r.body.error.details.map((d: { path: string }) => d.path), query).toContain(path);
    }
  });
});
