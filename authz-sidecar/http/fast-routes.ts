import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { ScopeGateError } from '../../shared/errors.ts';
import { sendError } from '../../shared/http-error.ts';
import type { SidecarMetrics } from '../metrics.ts';
import type { PolicyModel } from '../model/policy-model.ts';
import { authenticateAdmin, authenticateBroker } from './auth.ts';
import type { DecisionAnswers } from './decision-answers.ts';
import { toClientError } from './error-response.ts';
import { retryAfterOf, type AdminRateLimiter } from './rate-limit.ts';

const BODY_LIMIT = 1024 * 1024;

export interface FastRouteDeps {
  replica: { model: PolicyModel };
  adminToken: string;
  brokerToken: string;
  logger: Logger;
  metrics: SidecarMetrics;
  answers: DecisionAnswers;
  rateLimiter: AdminRateLimiter;
  /** POST /v1/broker/ledger: a broker's session events and lease renewal, validated and applied (routes/broker.ts). */
  ledgerReport: (body: unknown) => Promise<unknown>;
}

/**
 * The hot routes without Express: `POST /v1/evaluate` (every service calls it on every request),
 * `POST /v1/broker/connect` and `/connect/batch` (every MQTT CONNECT), `POST /v1/broker/sessions` (every
 * policy change that concerns connected sessions) and `POST /v1/broker/ledger` (sessions coming and going,
 * e.g. every revocation). Served by the same authentication and
 * the same answer functions (http/decision-answers.ts) as their Express routes, answered in one write:
 * Express's router, body-parser and response helpers cost more than the decision itself (about half of a
 * request's CPU in a profile). Anything but the plain form of the request — a query string (explain), a
 * content encoding — returns false and is left to Express.
 */
export function fastRoutes(deps: FastRouteDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { answers } = deps;
  const brokerOnly = (req: IncomingMessage) => authenticateBroker(deps.brokerToken, req.headers.authorization);
  const routes: Record<string, (req: IncomingMessage, body: Buffer, log: Logger) => Promise<unknown>> = {
    '/v1/evaluate': async (req, raw, log) => {
      const principal = authenticateAdmin(deps.replica.model, deps.adminToken, req.headers.authorization);
      deps.rateLimiter.charge(principal, 1);
      return answers.evaluate(principal, parseJson(raw), false, log);
    },
    '/v1/broker/connect': async (req, raw, log) => {
      brokerOnly(req);
      return answers.connect(parseJson(raw), log);
    },
    '/v1/broker/connect/batch': async (req, raw, log) => {
      brokerOnly(req);
      return answers.connectBatch(parseJson(raw), log);
    },
    '/v1/broker/sessions': async (req, raw) => {
      brokerOnly(req);
      return answers.refresh(parseJson(raw));
    },
    '/v1/broker/ledger': async (req, raw) => {
      brokerOnly(req);
      return deps.ledgerReport(parseJson(raw));
    },
  };
  return (req, res) => {
    const route = req.method === 'POST' && req.url !== undefined ? routes[req.url] : undefined;
    if (!route || req.headers['content-encoding'] !== undefined) return false;
    const header = req.headers['x-request-id'];
    const requestId = typeof header === 'string' && /^[\w.-]{1,64}$/.test(header) ? header : randomUUID();
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > BODY_LIMIT) {
      answerError(res, requestId, new ScopeGateError('PAYLOAD_TOO_LARGE'));
      req.resume();
      return true;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > BODY_LIMIT && !refused) {
        refused = true;
        answerError(res, requestId, new ScopeGateError('PAYLOAD_TOO_LARGE'));
      }
      if (!refused) chunks.push(chunk);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      if (refused) return;
      const log = deps.logger.child({ requestId });
      void route(req, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), log).then(
        (body) => answer(res, requestId, body),
        (err: unknown) => answerError(res, requestId, toClientError(err, log)),
      );
    });
    return true;
  };

  function parseJson(raw: Buffer): unknown {
    try {
      return JSON.parse(raw.toString('utf8'));
    } catch {
      throw new ScopeGateError('INVALID_JSON');
    }
  }

  function answer(res: ServerResponse, requestId: string, result: unknown): void {
    if (res.headersSent) return;
    const body = JSON.stringify(result);
    deps.metrics.httpRequests.inc({ method: 'POST', status: '200' });
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-request-id': requestId });
    res.end(body);
  }

  function answerError(res: ServerResponse, requestId: string, error: ScopeGateError): void {
    if (res.headersSent) return;
    if (error.code === 'STORE_UNAVAILABLE') deps.metrics.storeErrors.inc();
    deps.metrics.httpRequests.inc({ method: 'POST', status: String(error.status) });
    const retryAfter = retryAfterOf(error);
    sendError(res, error, { 'x-request-id': requestId, ...(retryAfter ? { 'retry-after': retryAfter } : {}) });
  }
}
