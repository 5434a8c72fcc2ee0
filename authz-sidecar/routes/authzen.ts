import { Router, type RequestHandler } from 'express';
import * as responses from '../http/responses.ts';
import { authzenEvaluationSchema, authzenEvaluationsSchema, decideAuthzen, decideAuthzenBatch } from '../decisions/authzen.ts';
import { authenticateAdmin } from '../http/auth.ts';
import { parse } from '../http/validate.ts';
import type { SidecarContext } from './context.ts';
import { principalOf } from './resource.ts';

/**
 * AuthZEN Authorization API 1.0 (OpenID, final): `POST /access/v1/evaluation`, `POST /access/v1/evaluations`
 * (same bearer auth as /v1) and the public `GET /.well-known/authzen-configuration` (PDP metadata). The
 * search APIs are not offered: ScopeGate keeps no inventory of resources to search, and subject search
 * would list a tenant's users to any caller with a decision right.
 */
export function authzenRoutes(ctx: SidecarContext): Router {
  const r = Router();
  const model = () => ctx.replica.model;

  ctx.routes.add({ method: 'get', path: '/.well-known/authzen-configuration', tag: 'authzen', summary: 'AuthZEN PDP metadata', root: true, public: true, response: responses.authzenConfiguration });
  r.get('/.well-known/authzen-configuration', (req, res) => {
    const base = `${req.protocol}://${req.get('host') ?? 'localhost'}`;
    res.setHeader('cache-control', 'public, max-age=300');
    res.json({
      policy_decision_point: base,
      access_evaluation_endpoint: `${base}/access/v1/evaluation`,
      access_evaluations_endpoint: `${base}/access/v1/evaluations`,
    });
  });

  const access = Router();
  access.use(((req, res, next) => {
    res.locals.principal = authenticateAdmin(model(), ctx.adminToken, req.headers.authorization);
    next();
  }) as RequestHandler);

  ctx.routes.add({ method: 'post', path: '/access/v1/evaluation', tag: 'authzen', summary: 'AuthZEN Access Evaluation (subject, action, resource with properties.scopeId, context)', body: authzenEvaluationSchema, root: true, response: responses.authzenDecision });
  access.post('/evaluation', (req, res) => {
    const body = parse(authzenEvaluationSchema, req.body, 'body');
    res.json(decideAuthzen(model(), body, principalOf(res), ctx.clock().getTime()));
  });

  ctx.routes.add({ method: 'post', path: '/access/v1/evaluations', tag: 'authzen', summary: 'AuthZEN Access Evaluations (defaults + evaluations, options.evaluations_semantic)', body: authzenEvaluationsSchema, root: true, response: responses.authzenDecisions });
  access.post('/evaluations', (req, res) => {
    const body = parse(authzenEvaluationsSchema, req.body, 'body');
    res.json(decideAuthzenBatch(model(), body, principalOf(res), ctx.clock().getTime()));
  });

  r.use('/access/v1', access);
  return r;
}
