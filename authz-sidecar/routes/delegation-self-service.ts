import type { RequestHandler } from 'express';
import { ScopeGateError } from '../../shared/errors.ts';
import { verifyActorToken } from '../credentials/signing-keys.ts';
import { present } from '../http/present.ts';
import { parse } from '../http/validate.ts';
import { inputSchemas } from '../service/inputs.ts';
import { createDelegation } from '../service/delegation.ts';
import { actorIn, projectIn } from '../service/messaging.ts';
import { Tx } from '../service/tx.ts';
import type { SidecarContext } from './context.ts';

/**
 * `POST /v1/organizations/{orgId}/projects/{projectId}/actors/{actorId}/delegations` called by the principal
 * itself: the bearer is the principal actor's own JWT (not a delegated one), and the body must name that
 * principal. Anything else (the admin token, API keys) goes on to the admin route. The principal can only
 * delegate itself, to an agent of its own tenant (createDelegation checks the tenant).
 */
export function delegationSelfService(ctx: SidecarContext, tokenIssuer: string): RequestHandler {
  return async (req, res, next) => {
    const header = req.headers.authorization ?? '';
    const token = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
    if (token.split('.').length !== 3) return next();
    const model = ctx.replica.model;
    const check = await verifyActorToken(model, tokenIssuer, token, ctx.clock());
    if (!check.ok) return next(); // not one of our actor tokens: the admin check decides (401 if nothing fits)
    if ((check.payload as { act?: unknown }).act !== undefined) throw new ScopeGateError('FORBIDDEN', 'A delegated token cannot create delegation grants.');
    const principal = model.get('actor', check.payload.sub);
    if (!principal || principal.disabled) throw new ScopeGateError('UNAUTHENTICATED', 'The token names no enabled actor.');
    const input = parse(inputSchemas.delegationCreate, req.body ?? {}, 'body');
    if (input.subjectId !== principal.subjectId && input.subjectId !== principal.id) {
      throw new ScopeGateError('FORBIDDEN', 'A principal may only delegate itself.', [{ path: 'body.subjectId', message: 'not the caller' }]);
    }
    const readTx = new Tx(model, ctx.clock().toISOString());
    const agent = actorIn(readTx, projectIn(readTx, String(req.params.orgId), String(req.params.projectId)), String(req.params.actorId));
    const { value, revision } = await ctx.writer.write({ principal: principal.subjectId, requestId: String(res.locals.requestId ?? '') }, 'delegation.create', (tx) =>
      createDelegation(tx, agent, principal.subjectId, input.expiresInSeconds, principal.subjectId),
    );
    res.status(201).json({ ...present(value), revision });
  };
}
