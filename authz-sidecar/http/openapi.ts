import { z } from 'zod';
import { ERROR_CATALOGUE } from '../../shared/errors.ts';
import type { RouteDoc } from '../routes/registry.ts';

/**
 * The OpenAPI 3.1 document, generated from the same zod schemas that validate requests (zod's JSON Schema
 * output is draft 2020-12, which OpenAPI 3.1 uses as is).
 */
export function buildOpenApi(routes: RouteDoc[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = `${route.root ? '' : '/v1'}${route.path}`;
    const parameters: unknown[] = [];
    for (const m of path.matchAll(/\{(\w+)\}/g)) parameters.push({ name: m[1], in: 'path', required: true, schema: { type: 'string' } });
    if (route.query) {
      const schema = toSchema(route.query, 'input') as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, s] of Object.entries(schema.properties ?? {})) {
        parameters.push({ name, in: 'query', required: (schema.required ?? []).includes(name), schema: s });
      }
    }
    for (const f of route.filters ?? []) parameters.push({ name: f, in: 'query', required: false, schema: { type: 'string' }, description: `Only items whose ${f} equals this` });
    const op: Record<string, unknown> = {
      tags: [route.tag],
      summary: route.summary,
      ...(route.description ? { description: route.description } : {}),
      operationId: `${route.method}${path.replace(/[{}]/g, '').replace(/[^a-zA-Z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
      parameters,
      responses: {
        [String(route.status ?? 200)]: {
          description: 'Success',
          content: { [route.contentType ?? 'application/json']: { schema: route.response ? toSchema(route.response, 'output') : {} } },
        },
        ...errorResponses(route),
      },
      ...(route.public ? { security: [] } : {}),
    };
    if (route.body) op.requestBody = { required: true, content: { 'application/json': { schema: toSchema(route.body, 'input') } } };
    (paths[path] ??= {})[route.method] = op;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'ScopeGate authorization sidecar',
      version: '1.0.0',
      description: 'Multi-tenant MQTT authorization: scope tree, roles, permissions, evaluate.',
      license: { name: 'UNLICENSED: a private package, all rights reserved by its authors', url: 'https://spdx.org/licenses/' },
    },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message', 'details'],
              properties: {
                code: { type: 'string', enum: Object.keys(ERROR_CATALOGUE) },
                message: { type: 'string' },
                details: { type: 'array', items: { type: 'object' } },
              },
            },
          },
        },
      },
    },
  };
}

/**
 * The 4xx answers a route can give, by what it takes (SPEC §3): 400 for malformed HTTP and for a body,
 * query or filters it validates, 413 for a body, 401 and 403 for the bearer (the broker API answers 401 only), 404 for an id in
 * its path, 409 and 422 for writes, 429 when the caller is rate-limited; 503 while the store is unreachable.
 */
export function errorStatuses(route: RouteDoc): number[] {
  const statuses = new Set<number>();
  const write = route.method !== 'get' && route.tag !== 'evaluate' && route.tag !== 'broker';
  // Every route: a request Node's HTTP parser refuses (broken HTTP, headers too large) gets 400 in SPEC §3's
  // format (sidecar.ts answerClientError); routes that validate a body, query or filters also answer 400.
  statuses.add(400);
  if (route.body) statuses.add(413);
  if (!route.public) statuses.add(401);
  if (!route.public && route.tag !== 'broker') statuses.add(403).add(429);
  if (/\{\w+\}/.test(route.path) || route.tag === 'evaluate') statuses.add(404);
  if (write) statuses.add(409).add(422);
  if (route.tag === 'evaluate' && route.body) statuses.add(422);
  if (!route.public || route.path === '/readyz') statuses.add(503);
  return [...statuses].sort((a, b) => a - b);
}

function errorResponses(route: RouteDoc): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const status of errorStatuses(route)) {
    const codes = Object.entries(ERROR_CATALOGUE)
      .filter(([, e]) => e.status === status)
      .map(([code]) => code);
    out[String(status)] = { description: `Error: ${codes.join(', ')}`, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
  }
  return out;
}

function toSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const out = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  delete out.$schema;
  return out;
}
