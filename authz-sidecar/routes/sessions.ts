import { Router } from 'express';
import { z } from 'zod';
import { ScopeGateError } from '../../shared/errors.ts';
import type { Principal } from '../access/principal.ts';
import { parse } from '../http/validate.ts';
import * as responses from '../http/responses.ts';
import type { SessionEntry } from '../ledger/session-ledger.ts';
import type { SidecarContext } from './context.ts';
import { principalOf } from './resource.ts';

const ref = z.string().min(1).max(200);
export const sessionListQuery = z.object({
  tenantId: ref.optional(),
  projectId: ref.optional(),
  scopeId: ref.optional(),
  actorId: ref.optional(),
  brokerId: ref.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/**
 * Live MQTT sessions, as the brokers report them to the session ledger: list (filters; an API key sees only
 * sessions counted under its scope), read one, and ask the owning broker to close one.
 */
export function sessionRoutes(ctx: SidecarContext): Router {
  const r = Router();

  ctx.routes.add({ method: 'get', path: '/sessions', tag: 'sessions', summary: 'Live MQTT sessions (filters: tenantId, projectId, scopeId = its subtree, actorId, brokerId)', query: sessionListQuery, response: responses.sessionPage });
  r.get('/sessions', async (req, res) => {
    const q = parse(sessionListQuery, req.query, 'query');
    const principal = principalOf(res);
    const all = (await ctx.ledger.list({ tenantId: q.tenantId, projectId: q.projectId, scopeId: q.scopeId, actorId: q.actorId, brokerId: q.brokerId })).filter((e) => visible(principal, e));
    res.json({ data: all.slice(0, q.limit).map(present), total: all.length });
  });

  ctx.routes.add({ method: 'get', path: '/sessions/{sessionId}', tag: 'sessions', summary: 'One live MQTT session', response: responses.session });
  r.get('/sessions/:sessionId', async (req, res) => {
    res.json(present(await findSession(ctx, principalOf(res), String(req.params.sessionId))));
  });

  ctx.routes.add({ method: 'post', path: '/sessions/{sessionId}/disconnect', tag: 'sessions', summary: 'Ask the owning broker to close a live session (202; it leaves the list when closed)', status: 202, response: responses.disconnectRequested });
  r.post('/sessions/:sessionId/disconnect', async (req, res) => {
    const session = await findSession(ctx, principalOf(res), String(req.params.sessionId));
    await ctx.ledger.requestDisconnect({ sessionId: session.sessionId, brokerId: session.brokerId });
    (res.locals.log as typeof ctx.logger).info({ sessionId: session.sessionId, actorId: session.actorId, principal: principalOf(res).id }, 'session disconnect requested');
    res.status(202).json({ sessionId: session.sessionId, brokerId: session.brokerId, status: 'disconnect_requested' });
  });

  return r;
}

/** An API key sees the sessions counted under its own scope. */
function visible(principal: Principal, e: SessionEntry): boolean {
  return principal.kind === 'root' || e.scopePath.includes(principal.scopeId);
}

async function findSession(ctx: SidecarContext, principal: Principal, sessionId: string): Promise<SessionEntry> {
  const e = await ctx.ledger.get(sessionId.slice(0, 200));
  if (!e) throw new ScopeGateError('NOT_FOUND', `session '${sessionId.slice(0, 80)}' is not live.`);
  if (!visible(principal, e)) throw new ScopeGateError('FORBIDDEN', 'This API key may not access this session.');
  return e;
}

function present(e: SessionEntry) {
  return { ...e, connectedAt: new Date(e.connectedAt).toISOString() };
}
