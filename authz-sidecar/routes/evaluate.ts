import { Router } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { ScopeGateError } from '../../shared/errors.ts';
import {
  EVALUATE_BATCH_MAX,
  EXPLAIN_BATCH_MAX,
  TRACE_STEPS_PER_DECISION,
  TRACE_STEPS_PER_RESPONSE,
  awaitFreshness,
  decideEvaluateRequest,
  evaluateRequestSchema,
} from '../decisions/evaluate-request.ts';
import { EXPLAIN_COST } from '../http/rate-limit.ts';
import type { DecisionAnswers } from '../http/decision-answers.ts';
import * as responses from '../http/responses.ts';
import { queries } from '../http/queries.ts';
import { parse } from '../http/validate.ts';
import type { SidecarContext } from './context.ts';
import { principalOf } from './resource.ts';

const batchBody = z.strictObject({ requests: z.array(evaluateRequestSchema).min(1).max(EVALUATE_BATCH_MAX) });

/** A batch yields the event loop after this much work, so broker CONNECTs never queue behind it. */
const BATCH_SLICE_MS = 2;

/** POST /v1/evaluate and /v1/evaluate/batch: decisions from the in-memory model, no store round trip. */
export function evaluateRoutes(ctx: SidecarContext, answers: DecisionAnswers): Router {
  const r = Router();
  const batchTurn = oneAtATime();

  ctx.routes.add({ method: 'post', path: '/evaluate', tag: 'evaluate', summary: 'Decide one request (?explain=true for the trace)', body: evaluateRequestSchema, query: queries.explainQuery, response: responses.decision });
  r.post('/evaluate', async (req, res) => {
    const explain = parse(queries.explainQuery, req.query, 'query').explain === 'true';
    if (explain) ctx.rateLimiter.charge(principalOf(res), EXPLAIN_COST - 1);
    res.json(await answers.evaluate(principalOf(res), req.body, explain, res.locals.log as Logger));
  });

  ctx.routes.add({ method: 'post', path: '/evaluate/batch', tag: 'evaluate', summary: 'Decide many requests, each answered on its own', body: batchBody, query: queries.explainQuery, response: responses.decisionBatch });
  r.post('/evaluate/batch', async (req, res) => {
    const { requests } = parse(batchBody, req.body, 'body');
    const explain = parse(queries.explainQuery, req.query, 'query').explain === 'true';
    if (explain && requests.length > EXPLAIN_BATCH_MAX) {
      throw new ScopeGateError('VALIDATION_FAILED', `A batch with explain=true holds at most ${EXPLAIN_BATCH_MAX} requests (got ${requests.length}).`, [
        { path: 'body.requests', message: `at most ${EXPLAIN_BATCH_MAX} with explain`, maximum: EXPLAIN_BATCH_MAX },
      ]);
    }
    const principal = principalOf(res);
    // The caller's budget pays per decision (the request itself was charged one unit already).
    ctx.rateLimiter.charge(principal, requests.length * (explain ? EXPLAIN_COST : 1) - 1);
    await awaitFreshness(ctx.replica, Math.max(0, ...requests.map((q) => q.consistency?.atLeastAsFresh ?? 0)));
    // One batch at a time per sidecar: others wait their turn without holding the event loop, so a CONNECT
    // waits for at most one slice between two of its steps, however many batches arrive at once.
    const release = await batchTurn();
    try {
      // Decided, then written, in slices that yield the event loop.
      const results: string[] = [];
      let traceBudget = TRACE_STEPS_PER_RESPONSE;
      let slice = performance.now();
      const yieldIfDue = async () => {
        if (performance.now() - slice < BATCH_SLICE_MS) return;
        await new Promise<void>((resolve) => setImmediate(resolve));
        slice = performance.now();
      };
      for (const q of requests) {
        try {
          const d = decideEvaluateRequest(ctx.replica.model, q, explain, principal, ctx.clock().getTime(), Math.min(TRACE_STEPS_PER_DECISION, traceBudget));
          traceBudget -= d.trace?.length ?? 0;
          results.push(JSON.stringify(d));
        } catch (e) {
          if (e instanceof ScopeGateError) results.push(JSON.stringify({ error: e.toBody().error }));
          else throw e;
        }
        await yieldIfDue();
      }
      const revision = ctx.replica.seq;
      res.setHeader('content-type', 'application/json; charset=utf-8');
      res.write('{"results":[');
      for (let i = 0; i < results.length; i++) {
        res.write(i === 0 ? results[i]! : `,${results[i]!}`);
        await yieldIfDue();
      }
      res.end(`],"revision":${revision}}`);
    } finally {
      release();
    }
  });

  return r;
}

/** A queue of turns: `await turn()` resolves with the release of the turn once every earlier one is released. */
function oneAtATime(): () => Promise<() => void> {
  let tail: Promise<void> = Promise.resolve();
  return () => {
    let release!: () => void;
    const done = new Promise<void>((resolve) => (release = resolve));
    const ready = tail.then(() => release);
    tail = tail.then(() => done);
    return ready;
  };
}
