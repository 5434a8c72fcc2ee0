/**
 * The OpenAPI document covers every route the sidecar mounts: the Express router is walked and each
 * (method, path) must appear in /openapi.json, with a request schema wherever the route takes a body.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSidecar, type TestSidecar } from './helpers/sidecar.ts';

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
});
