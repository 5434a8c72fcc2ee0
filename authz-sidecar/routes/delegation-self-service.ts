import { Router, type Request, type Response } from 'express';
import { ScopeGateError } from '../../shared/errors.ts';
import { assertMayDelegateTo, authenticateDelegatingPrincipal, isSelf, type DelegatingPrincipal } from '../access/delegating-principal.ts';
import type { ExternalTokenVerifier } from '../credentials/trusted-issuer.ts';
import { present } from '../http/present.ts';
import { parse } from '../http/validate.ts';
import { createDelegation } from '../service/delegation.ts';
import { deleteRecord } from '../service/delete.ts';
import { inputSchemas } from '../service/inputs.ts';
import { actorIn, projectIn } from '../service/messaging.ts';
import { Tx } from '../service/tx.ts';
import type { SidecarContext } from './context.ts';

const BASE = '/v1/organizations/:orgId/projects/:projectId/actors/:actorId/delegations';

/**
 * The delegation-grant routes (`POST`/`GET` `…/actors/{actorId}/delegations`, `DELETE …/{delegationId}`) called
 * by the principal itself rather than an admin: an actor with its own JWT, or a user with its identity
 * provider's JWT (access/delegating-principal.ts). A principal creates grants only for itself, only to an agent
 * (a user: of a project where it holds a membership), and sees and revokes only its own grants. Any other
 * bearer (the admin token, API keys) goes on to the admin routes; the OpenAPI entries are theirs.
 *
 * The audit log names the principal's subjectId as who did it, and the grant's `createdBy` too.
 */
export function delegationSelfService(ctx: SidecarContext, tokenIssuer: string, verifyUserToken: ExternalTokenVerifier | null): Router {
  const r = Router();
  const param = (req: Request, name: string) => String(req.params[name]);

  /** The calling principal, or undefined to let the admin routes decide; charges its rate budget. */
  const principalOf = async (req: Request): Promise<DelegatingPrincipal | undefined> => {
    const principal = await authenticateDelegatingPrincipal({ model: ctx.replica.model, tokenIssuer, verifyUserToken, now: ctx.clock() }, req.headers.authorization, param(req, 'orgId'));
    if (!principal) return undefined;
    // The same buckets as an API key's: one per principal, one per tenant (so a tenant's users share its budget).
    ctx.rateLimiter.charge({ kind: 'apiKey', id: `principal:${principal.subjectId}`, scopeId: '', tenantId: principal.tenantId, capabilities: [] }, 1);
    return principal;
  };
  /** The agent named by the URL, inside the URL's organization and project (404 otherwise). */
  const agentOf = (req: Request) => {
    const tx = new Tx(ctx.replica.model, ctx.clock().toISOString());
    return actorIn(tx, projectIn(tx, param(req, 'orgId'), param(req, 'projectId')), param(req, 'actorId'));
  };
  const write = <T>(res: Response, principal: DelegatingPrincipal, action: string, build: (tx: Tx) => T) =>
    ctx.writer.write({ principal: principal.subjectId, requestId: String(res.locals.requestId ?? '') }, action, build);

  r.post(BASE, async (req, res, next) => {
    const principal = await principalOf(req);
    if (!principal) return next();
    const input = parse(inputSchemas.delegationCreate, req.body ?? {}, 'body');
    if (!isSelf(principal, input.subjectId)) {
      throw new ScopeGateError('FORBIDDEN', 'A principal may only delegate itself.', [{ path: 'body.subjectId', message: 'not the caller' }]);
    }
    const agent = agentOf(req);
    assertMayDelegateTo(ctx.replica.model, principal, agent);
    const { value, revision } = await write(res, principal, 'delegation.create', (tx) => {
      // Decided again on the transaction's view: the membership or the agent may have changed meanwhile.
      const current = tx.must('actor', agent.id);
      assertMayDelegateTo(tx.model, principal, current);
      return createDelegation(tx, current, principal.subjectId, input.expiresInSeconds, principal.subjectId);
    });
    res.status(201).json({ ...present(value), revision });
  });

  r.get(BASE, async (req, res, next) => {
    const principal = await principalOf(req);
    if (!principal) return next();
    const agent = agentOf(req);
    const own = ctx.replica.model
      .referrersOf(agent.id, 'delegation')
      .filter((d) => d.principalSubjectId === principal.subjectId)
      .sort((a, b) => (a.id < b.id ? -1 : 1));
    res.json({ data: own.map(present), revision: ctx.replica.seq });
  });

  r.delete(`${BASE}/:delegationId`, async (req, res, next) => {
    const principal = await principalOf(req);
    if (!principal) return next();
    const agent = agentOf(req);
    const d = ctx.replica.model.get('delegation', param(req, 'delegationId'));
    // Another principal's grant is "not found" too: a principal learns nothing about grants that are not its own.
    if (!d || d.actorId !== agent.id || d.principalSubjectId !== principal.subjectId) throw new ScopeGateError('NOT_FOUND', 'No such delegation grant of yours for this actor.');
    const { value, revision } = await write(res, principal, 'delegation.delete', (tx) => deleteRecord(tx, tx.must('delegation', d.id), false));
    res.json({ deleted: value.map((x) => ({ kind: x.kind, id: x.id })), revision });
  });
  return r;
}
