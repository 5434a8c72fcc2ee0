import { randomUUID } from 'node:crypto';
import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import { sendError } from '../shared/http-error.ts';
import { authenticateAdmin } from './http/auth.ts';
import { retryAfterOf } from './http/rate-limit.ts';
import type { DecisionAnswers } from './http/decision-answers.ts';
import { toClientError } from './http/error-response.ts';
import { buildOpenApi } from './http/openapi.ts';
import * as responses from './http/responses.ts';
import { unmatchedRoute } from './http/unmatched-route.ts';
import type { SidecarMetrics } from './metrics.ts';
import type { SidecarContext } from './routes/context.ts';
import { evaluateRoutes } from './routes/evaluate.ts';
import { managementRoutes } from './routes/management.ts';
import { brokerRoutes } from './routes/broker.ts';
import { messagingRoutes } from './routes/messaging.ts';
import { sessionRoutes } from './routes/sessions.ts';
import { mqttRoutes } from './routes/mqtt.ts';
import { delegationSelfService } from './routes/delegation-self-service.ts';
import type { ExternalTokenVerifier } from './credentials/trusted-issuer.ts';
import { authzenRoutes } from './routes/authzen.ts';
import { consoleRoutes } from './routes/console.ts';
import { whoamiRoutes } from './routes/whoami.ts';

export interface AppDeps extends SidecarContext {
  metrics: SidecarMetrics;
  tokenIssuer: string;
  /** The identity provider users log in with (shared with the CONNECT decisions); its JWTs also let a user manage its own delegation grants. */
  verifyUserToken: ExternalTokenVerifier | null;
  /** The decision routes' answers, shared with the fast path in front of Express. */
  answers: DecisionAnswers;
  heartbeatMs?: number;
}

/**
 * Builds the Express app from injected parts; never listens (main.ts does). Every error leaves through one
 * handler that turns it into SPEC §3's JSON error body; anything unexpected is logged and answered as a
 * generic 500 without internals.
 */
export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // No ETags: API answers are not cached by clients, and hashing every body costs ~3 % of a decision.
  app.set('etag', false);
  app.set('query parser', 'simple');

  app.use(((req, res, next) => {
    const requestId = typeof req.headers['x-request-id'] === 'string' && /^[\w.-]{1,64}$/.test(req.headers['x-request-id']) ? req.headers['x-request-id'] : randomUUID();
    res.locals.requestId = requestId;
    res.locals.log = deps.logger.child({ requestId });
    res.setHeader('x-request-id', requestId);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      deps.metrics.httpRequests.inc({ method: req.method, status: String(res.statusCode) });
      (res.locals.log as typeof deps.logger).debug({ method: req.method, path: req.path.slice(0, 200), status: res.statusCode, ms }, 'request');
    });
    next();
  }) as RequestHandler);

  for (const [path, summary, response, contentType] of [
    ['/healthz', 'Liveness', responses.health, undefined],
    ['/readyz', 'Readiness: 503 while the store is unreachable', responses.readiness, undefined],
    ['/metrics', 'Prometheus metrics', responses.metricsText, 'text/plain'],
    ['/openapi.json', 'This OpenAPI document', responses.openApiDocument, undefined],
    ['/v1/openapi.json', 'This OpenAPI document', responses.openApiDocument, undefined],
  ] as const) {
    deps.routes.add({ method: 'get', path, tag: 'operations', summary, root: true, public: true, response, ...(contentType ? { contentType } : {}) });
  }
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    try {
      await deps.store.ping();
      res.json({ status: 'ready', revision: deps.replica.seq });
    } catch {
      sendError(res, 'STORE_UNAVAILABLE');
    }
  });
  app.get('/metrics', async (_req, res) => {
    res.setHeader('content-type', deps.metrics.registry.contentType);
    res.send(await deps.metrics.registry.metrics());
  });

  // The console's pages and files are public (it signs in with a token the user types; nothing secret is served).
  app.use(consoleRoutes(deps));

  app.use(express.json({ limit: '1mb', type: () => true }));

  const openapi = () => buildOpenApi(deps.routes.all());
  app.get('/openapi.json', (_req, res) => {
    res.json(openapi());
  });
  app.get('/v1/openapi.json', (_req, res) => {
    res.json(openapi());
  });

  // The broker API and the JWKS authenticate on their own (BROKER_TOKEN / public), before the admin check.
  app.use(brokerRoutes(deps, { answers: deps.answers, ...(deps.heartbeatMs ? { heartbeatMs: deps.heartbeatMs } : {}) }));

  // AuthZEN 1.0 (its own paths, same bearer auth and engine as /v1/evaluate).
  app.use(authzenRoutes(deps));

  // A principal managing its own delegation grants: an actor with its own JWT, a user with its identity
  // provider's JWT (the trusted issuer users log in with over MQTT). Other bearers go on to the admin routes.
  app.use(delegationSelfService(deps, deps.tokenIssuer, deps.verifyUserToken));

  const v1 = express.Router();
  v1.use(((_req, res, next) => {
    const principal = authenticateAdmin(deps.replica.model, deps.adminToken, _req.headers.authorization);
    res.locals.principal = principal;
    // Every admin request costs one unit of its key's and tenant's budget; routes charge heavy work on top.
    deps.rateLimiter.charge(principal, 1);
    next();
  }) as RequestHandler);
  // Evaluate first: it is the hot route, and Express tries routes in order.
  v1.use(evaluateRoutes(deps, deps.answers));
  v1.use(managementRoutes(deps));
  v1.use(messagingRoutes(deps, deps.tokenIssuer));
  v1.use(sessionRoutes(deps));
  v1.use(mqttRoutes(deps));
  v1.use(whoamiRoutes(deps));
  app.use('/v1', v1);

  app.use(((req, res, next) => {
    const { error, allow } = unmatchedRoute(deps.routes.all(), req.method, req.path);
    if (allow) res.setHeader('allow', allow);
    next(error);
  }) as RequestHandler);

  app.use(((err, _req, res, _next) => {
    const error = toClientError(err, (res.locals.log as typeof deps.logger | undefined) ?? deps.logger);
    if (error.code === 'STORE_UNAVAILABLE') deps.metrics.storeErrors.inc();
    const retryAfter = retryAfterOf(error);
    sendError(res, error, retryAfter ? { 'retry-after': retryAfter } : {});
  }) as ErrorRequestHandler);

  return app;
}
