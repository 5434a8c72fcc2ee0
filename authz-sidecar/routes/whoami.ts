import { Router } from 'express';
import * as responses from '../http/responses.ts';
import type { SidecarContext } from './context.ts';
import { principalOf } from './resource.ts';

/** GET /v1/whoami: who the bearer is (root, or an API key and the scope it is confined to). */
export function whoamiRoutes(ctx: SidecarContext): Router {
  const r = Router();
  ctx.routes.add({ method: 'get', path: '/whoami', tag: 'operations', response: responses.whoami, summary: 'Who the bearer token is: root, or an API key and the scope and tenant it is confined to' });
  r.get('/whoami', (_req, res) => {
    const p = principalOf(res);
    if (p.kind === 'root') return res.json({ kind: 'root', id: p.id });
    const scope = ctx.replica.model.get('scope', p.scopeId);
    res.json({ kind: 'apiKey', id: p.id, scopeId: p.scopeId, tenantId: p.tenantId, scopeName: scope?.name ?? null });
  });
  return r;
}
