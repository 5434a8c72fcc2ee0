import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ScopeGateError, isScopeGateError } from '../../shared/errors.ts';
import type { SidecarMetrics } from '../metrics.ts';
import type { SidecarContext } from '../routes/context.ts';
import { awaitFreshness, decideOne } from '../routes/evaluate.ts';
import { LoginThrottle } from '../credentials/login-throttle.ts';
import type { TrustedIssuerConfig } from '../credentials/trusted-issuer.ts';
import { connectBatchDecider, connectDecider } from '../routes/broker.ts';
import { authenticateAdmin, authenticateBroker } from './auth.ts';
import { schemas } from './schemas.ts';
import { parse } from './validate.ts';

const BODY_LIMIT = 1024 * 1024;

type FastContext = SidecarContext & { metrics: SidecarMetrics; tokenIssuer: string; throttle?: LoginThrottle; trustedIssuer?: TrustedIssuerConfig | null };

/**
 * The hot routes without Express: `POST /v1/evaluate` (every service calls it on every request) and
 * `POST /v1/broker/connect` and `/connect/batch` (every MQTT CONNECT). Served by the same schemas, the same authentication and the
 * same decision functions (decideOne, connectDecider) as their Express routes, answered in one write:
 * Express's router, body-parser and response helpers cost more than the decision itself (about half of a
 * request's CPU in a profile). Anything but the plain form of the request — a query string (explain), a
 * content encoding — returns false and is left to Express.
 */
export function fastRoutes(ctx: FastContext): (req: IncomingMessage, res: ServerResponse) => boolean {
  const connect = connectDecider(ctx, { tokenIssuer: ctx.tokenIssuer, throttle: ctx.throttle ?? new LoginThrottle(), trustedIssuer: ctx.trustedIssuer ?? null });
  const connectBatch = connectBatchDecider(connect);
  const brokerOnly = (req: IncomingMessage) => authenticateBroker(ctx.brokerToken, req.headers.authorization);
  const routes: Record<string, (req: IncomingMessage, body: Buffer, requestId: string) => Promise<unknown>> = {
    '/v1/evaluate': async (req, raw) => {
      const principal = authenticateAdmin(ctx.replica.model, ctx.adminToken, req.headers.authorization);
      const input = parse(schemas.evaluate, parseJson(raw), 'body');
      await awaitFreshness(ctx, input.consistency?.atLeastAsFresh);
      return decideOne(ctx, input, false, principal);
    },
    '/v1/broker/connect': async (req, raw, requestId) => {
      brokerOnly(req);
      return connect(parseJson(raw), ctx.logger.child({ requestId }));
    },
    '/v1/broker/connect/batch': async (req, raw, requestId) => {
      brokerOnly(req);
      return connectBatch(parseJson(raw), ctx.logger.child({ requestId }));
    },
  };
  return (req, res) => {
    const route = req.method === 'POST' && req.url !== undefined ? routes[req.url] : undefined;
    if (!route || req.headers['content-encoding'] !== undefined) return false;
    const header = req.headers['x-request-id'];
    const requestId = typeof header === 'string' && /^[\w.-]{1,64}$/.test(header) ? header : randomUUID();
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > BODY_LIMIT) {
      answer(res, requestId, new ScopeGateError('PAYLOAD_TOO_LARGE'));
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
        answer(res, requestId, new ScopeGateError('PAYLOAD_TOO_LARGE'));
      }
      if (!refused) chunks.push(chunk);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      if (refused) return;
      void route(req, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), requestId).then(
        (body) => answer(res, requestId, body),
        (err: unknown) => {
          if (!isScopeGateError(err)) ctx.logger.error({ err, requestId }, 'unexpected error');
          answer(res, requestId, isScopeGateError(err) ? err : new ScopeGateError('INTERNAL'));
        },
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
    const error = isScopeGateError(result) ? result : null;
    const status = error ? error.status : 200;
    const body = JSON.stringify(error ? error.toBody() : result);
    if (error?.code === 'STORE_UNAVAILABLE') ctx.metrics.storeErrors.inc();
    ctx.metrics.httpRequests.inc({ method: 'POST', status: String(status) });
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-request-id': requestId });
    res.end(body);
  }
}
