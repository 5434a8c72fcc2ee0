/**
 * The OpenAPI document covers every route the sidecar mounts: the Express router is walked and each
 * (method, path) must appear in /openapi.json, with a request schema wherever the route takes a body.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSidecar, type TestSidecar } from './helpers/sidecar.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
  rawPath?: string;
}

function mountedRoutes(stack: Layer[], prefix = ''): Array<{ method: string; path: string }> {
  const out: Array<{ method: string; path: string }> = [];
  for (const layer of stack) {
    if (layer.route) {
      for (const method of Object.keys(layer.route.methods)) {
        if (method === '_all') continue;
        out.push({ method, path: `${prefix}${layer.route.path}`.replace(/:(\w+)/g, '{$1}') });
      }
    } else if (layer.handle?.stack) {
      out.push(...mountedRoutes(layer.handle.stack, `${prefix}${layer.rawPath && layer.rawPath !== '/' ? layer.rawPath : ''}`));
    }
  }
  return out;
}

describe('OpenAPI document', () => {
  let s: TestSidecar;
  let doc: any;
  beforeAll(async () => {
    s = await startSidecar();
    const res = await fetch(`${s.url}/openapi.json`);
    expect(res.status).toBe(200);
    doc = await res.json();
  });
  afterAll(() => s?.close());

  it('is OpenAPI 3.1, also served under /v1', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const v1 = await (await fetch(`${s.url}/v1/openapi.json`)).json();
    expect(v1).toEqual(doc);
  });

  it('lists every mounted route', () => {
    const routes = mountedRoutes((s.sidecar.app as unknown as { router: { stack: Layer[] } }).router.stack);
    expect(routes.length).toBeGreaterThan(60);
    const missing = routes.filter((r) => !doc.paths[r.path]?.[r.method]).map((r) => `${r.method.toUpperCase()} ${r.path}`);
    expect(missing).toEqual([]);
  });

  it('documents request bodies from the validating schemas', () => {
    const tenant = doc.paths['/v1/tenants'].post.requestBody.content['application/json'].schema;
    expect(tenant.required).toContain('name');
    expect(Object.keys(tenant.properties)).toEqual(expect.arrayContaining(['name', 'slug', 'maxUsers', 'maxWorkspaces', 'billingEmail']));
    const roles = doc.paths['/v1/roles/batch'].post.requestBody.content['application/json'].schema;
    expect(roles.type).toBe('array');
    const evaluate = doc.paths['/v1/evaluate'].post.requestBody.content['application/json'].schema;
    expect(evaluate.required).toEqual(expect.arrayContaining(['actor', 'scopeId', 'action', 'resource']));
    expect(doc.components.schemas.Error.properties.error.properties.code.enum).toContain('STORE_UNAVAILABLE');
  });

  it('describes the success answer of every route with a schema, and the 4xx answers it gives', () => {
    const undocumented: string[] = [];
    for (const [path, ops] of Object.entries<Record<string, any>>(doc.paths)) {
      for (const [method, op] of Object.entries<any>(ops)) {
        const success = Object.entries<any>(op.responses).find(([status]) => status.startsWith('2'));
        const schema = success && Object.values<any>(success[1].content)[0]?.schema;
        if (!schema || Object.keys(schema).length === 0) undocumented.push(`${method.toUpperCase()} ${path}: no success schema`);
        if (!Object.keys(op.responses).some((status) => status.startsWith('4'))) undocumented.push(`${method.toUpperCase()} ${path}: no 4xx`);
      }
    }
    expect(undocumented).toEqual([]);
    // A record's answer names its fields (accessScopeId, subjectId, …), not just "an object".
    const actor = doc.paths['/v1/organizations/{orgId}/projects/{projectId}/actors'].post.responses['201'].content['application/json'].schema;
    expect(Object.keys(actor.properties)).toEqual(expect.arrayContaining(['actorId', 'subjectId', 'accessScopeId', 'revision']));
    const tenant = doc.paths['/v1/tenants/{id}'].get.responses;
    expect(Object.keys(tenant)).toEqual(expect.arrayContaining(['200', '401', '403', '404']));
    expect(tenant['404'].content['application/json'].schema.$ref).toBe('#/components/schemas/Error');
    expect(doc.info.license.name).toBeTruthy();
  });

  it('passes the Redocly linter with no error and no warning', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sg-openapi-'));
    try {
      const file = join(dir, 'openapi.json');
      writeFileSync(file, JSON.stringify(doc));
      const run = spawnSync(process.execPath, [join(root, 'node_modules', '@redocly', 'cli', 'bin', 'cli.js'), 'lint', file, '--format=json'], { cwd: dir, encoding: 'utf8', env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' } });
      const report = JSON.parse(run.stdout) as { totals: { errors: number; warnings: number }; problems: Array<{ ruleId: string; message: string }> };
      expect(report.problems.map((p) => `${p.ruleId}: ${p.message}`)).toEqual([]);
      expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
