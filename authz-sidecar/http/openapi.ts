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
      operationId: `${route.method}${path.replace(/[{}]/g, '').replace(/[^a-zA-Z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
      parameters,
      responses: {
        [String(route.status ?? 200)]: { description: 'Success', content: { 'application/json': { schema: { type: 'object' } } } },
        default: { description: 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
      },
      ...(route.public ? { security: [] } : {}),
    };
    if (route.body) op.requestBody = { required: true, content: { 'application/json': { schema: toSchema(route.body, 'input') } } };
    (paths[path] ??= {})[route.method] = op;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'ScopeGate authorization sidecar', version: '1.0.0', description: 'Multi-tenant MQTT authorization: scope tree, roles, permissions, evaluate.' },
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

function toSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const out = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  delete out.$schema;
  return out;
}
