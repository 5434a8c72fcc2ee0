import { Router } from 'express';
import { z } from 'zod';
import { ScopeGateError } from '../../shared/errors.ts';
import { evaluate, type Decision } from '../engine/evaluate.ts';
import { assertCovers, type Principal } from '../http/auth.ts';
import { schemas } from '../http/schemas.ts';
import { parse } from '../http/validate.ts';
import type { PolicyModel } from '../model/policy-model.ts';
import type { SidecarContext } from './context.ts';
import { principalOf } from './resource.ts';

export type EvaluateInput = z.infer<typeof schemas.evaluate>;

const batchBody = z.strictObject({ requests: z.array(schemas.evaluate).min(1).max(1000) });

/** How long evaluate waits for this replica to reach a requested `atLeastAsFresh` revision. */
const FRESHNESS_WAIT_MS = 2_000;

/** POST /v1/evaluate and /v1/evaluate/batch: decisions from the in-memory model, no store round trip. */
export function evaluateRoutes(ctx: SidecarContext): Router {
  const r = Router();
  const decide = (input: EvaluateInput, explain: boolean, res: import('express').Response) => decideOne(ctx, input, explain, principalOf(res));
  const awaitFresh = (revision: number | undefined) => awaitFreshness(ctx, revision);

  ctx.routes.add({ method: 'post', path: '/evaluate', tag: 'evaluate', summary: 'Decide one request (?explain=true for the trace)', body: schemas.evaluate, query: schemas.explainQuery });
  r.post('/evaluate', async (req, res) => {
    const input = parse(schemas.evaluate, req.body, 'body');
    const explain = parse(schemas.explainQuery, req.query, 'query').explain === 'true';
    await awaitFresh(input.consistency?.atLeastAsFresh);
    res.json(decide(input, explain, res));
  });

  ctx.routes.add({ method: 'post', path: '/evaluate/batch', tag: 'evaluate', summary: 'Decide many requests, each answered on its own', body: batchBody, query: schemas.explainQuery });
  r.post('/evaluate/batch', async (req, res) => {
    const { requests } = parse(batchBody, req.body, 'body');
    const explain = parse(schemas.explainQuery, req.query, 'query').explain === 'true';
    await awaitFresh(Math.max(0, ...requests.map((q) => q.consistency?.atLeastAsFresh ?? 0)));
    const results = requests.map((q) => {
      try {
        return decide(q, explain, res);
      } catch (e) {
        if (e instanceof ScopeGateError) return { error: e.toBody().error };
        throw e;
      }
    });
    res.json({ results, revision: ctx.replica.seq });
  });

  return r;
}


/** One decision as the API answers it: scope must exist, the principal must cover it, then the engine. */
export function decideOne(ctx: SidecarContext, input: EvaluateInput, explain: boolean, principal: Principal): Decision & { revision: number } {
  const model = ctx.replica.model;
  if (!model.get('scope', input.scopeId)) {
    throw new ScopeGateError('NOT_FOUND', `scope '${input.scopeId.slice(0, 80)}' does not exist.`, [{ path: 'body.scopeId', message: 'no such scope' }]);
  }
  assertCovers(model, principal, input.scopeId);
  if (principal.kind === 'apiKey') assertSubjectOfTenant(model, input.actor.subjectId, principal.tenantId);
  const decision = evaluate(
    model,
    {
      subjectId: input.actor.subjectId,
      subjectType: input.actor.subjectType,
      scopeId: input.scopeId,
      action: input.action,
      resourceType: input.resource.resourceType,
      resourceId: input.resource.resourceId,
    },
    explain,
  );
  // A key never sees another tenant's memberships, not even as skipped steps of a trace.
  if (principal.kind === 'apiKey' && decision.trace) {
    decision.trace = decision.trace.filter((step) => model.get('membership', step.membershipId)?.tenantId === principal.tenantId);
  }
  return { ...decision, revision: model.seq };
}

/** Waits (bounded) until this replica has reached `revision`; NOT_FRESH_ENOUGH otherwise. */
export async function awaitFreshness(ctx: SidecarContext, revision: number | undefined): Promise<void> {
  if (revision === undefined || ctx.replica.seq >= revision) return;
  if (!(await ctx.replica.waitFor(revision, FRESHNESS_WAIT_MS))) {
    throw new ScopeGateError('NOT_FRESH_ENOUGH', `This replica is at revision ${ctx.replica.seq}, not yet ${revision}.`, [
      { message: 'replica behind', revision: ctx.replica.seq, requested: revision },
    ]);
  }
}

/**
 * An API key may only ask about subjects of its own tenant (SPEC §3: it cannot read another tenant): an actor
 * of the tenant, or a user whose default tenant it is or who has a membership in it. Unknown subjects are
 * left to the engine (DENIED unknown_subject).
 */
function assertSubjectOfTenant(model: PolicyModel, subjectId: string, tenantId: string): void {
  const subject = model.subject(subjectId);
  if (!subject) return;
  const ofTenant =
    subject.kind === 'actor'
      ? subject.tenantId === tenantId
      : subject.defaultTenantId === tenantId || model.membershipsOf(subject.subjectId).some((m) => m.tenantId === tenantId);
  if (!ofTenant) throw new ScopeGateError('FORBIDDEN', 'This API key may not ask about subjects of another tenant.', [{ path: 'body.actor.subjectId', message: 'outside key tenant' }]);
}
