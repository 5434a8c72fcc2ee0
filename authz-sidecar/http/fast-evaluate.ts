import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ScopeGateError, isScopeGateError } from '../../shared/errors.ts';
import type { SidecarMetrics } from '../metrics.ts';
import type { SidecarContext } from '../routes/context.ts';
import { awaitFreshness, decideOne } from '../routes/evaluate.ts';
import { authenticateAdmin } from './auth.ts';
import { schemas } from './schemas.ts';
import { parse } from './validate.ts';

const BODY_LIMIT = 1024 * 1024;

/**
 * `POST /v1/evaluate` without Express: the route every service calls on every request, served by the same
 * schema, the same authentication and the same decision function (decideOne) as the Express route, answered
 * in one write. Express's router, body-parser and response helpers cost more than the decision itself
 * (about half of a request's CPU in a profile). Anything but the plain form of the request — a query
 * string (explain), a content encoding — returns false and is left to Express.
 */
export function fastEvaluate(ctx: SidecarContext & { metrics: SidecarMetrics }): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if (req.method !== 'POST' || req.url !== '/v1/evaluate' || req.headers['content-encoding'] !== undefined) return false;
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
      void handle(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).then(
        (body) => answer(res, requestId, body),
        (err: unknown) => {
          if (!isScopeGateError(err)) ctx.logger.error({ err, requestId }, 'unexpected error');
          answer(res, requestId, isScopeGateError(err) ? err : new ScopeGateError('INTERNAL'));
        },
      );
    });
    return true;

    async function handle(raw: Buffer): Promise<unknown> {
      const principal = authenticateAdmin(ctx.replica.model, ctx.adminToken, req.headers.authorization);
      let json: unknown;
      try {
        json = JSON.parse(raw.toString('utf8'));
      } catch {
        throw new ScopeGateError('INVALID_JSON');
      }
      const input = parse(schemas.evaluate, json, 'body');
      await awaitFreshness(ctx, input.consistency?.atLeastAsFresh);
      return decideOne(ctx, input, false, principal);
    }
  };

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
