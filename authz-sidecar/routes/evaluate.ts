import { Router } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { ScopeGateError } from '../../shared/errors.ts';
import { awaitFreshness, decideEvaluateRequest, evaluateRequestSchema } from '../decisions/evaluate-request.ts';
import type { DecisionAnswers } from '../http/decision-answers.ts';
import * as responses from '../http/responses.ts';
import { queries } from '../http/queries.ts';
import { parse } from '../http/validate.ts';
import type { SidecarContext } from './context.ts';
import { principalOf } from './resource.ts';

const batchBody = z.strictObject({ requests: z.array(evaluateRequestSchema).min(1).max(1000) });

/** POST /v1/evaluate and /v1/evaluate/batch: decisions from the in-memory model, no store round trip. */
export function evaluateRoutes(ctx: SidecarContext, answers: DecisionAnswers): Router {
  const r = Router();

  ctx.routes.add({ method: 'post', path: '/evaluate', tag: 'evaluate', summary: 'Decide one request (?explain=true for the trace)', body: evaluateRequestSchema, query: queries.explainQuery, response: responses.decision });
  r.post('/evaluate', async (req, res) => {
    const explain = parse(queries.explainQuery, req.query, 'query').explain === 'true';
    res.json(await answers.evaluate(principalOf(res), req.body, explain, res.locals.log as Logger));
  });

  ctx.routes.add({ method: 'post', path: '/evaluate/batch', tag: 'evaluate', summary: 'Decide many requests, each answered on its own', body: batchBody, query: queries.explainQuery, response: responses.decisionBatch });
  r.post('/evaluate/batch', async (req, res) => {
    const { requests } = parse(batchBody, req.body, 'body');
    const explain = parse(queries.explainQuery, req.query, 'query').explain === 'true';
    await awaitFreshness(ctx.replica, Math.max(0, ...requests.map((q) => q.consistency?.atLeastAsFresh ?? 0)));
    const principal = principalOf(res);
    const results = requests.map((q) => {
      try {
        return decideEvaluateRequest(ctx.replica.model, q, explain, principal, ctx.clock().getTime());
      } catch (e) {
        if (e instanceof ScopeGateError) return { error: e.toBody().error };
        throw e;
      }
    });
    res.json({ results, revision: ctx.replica.seq });
  });

  return r;
}
