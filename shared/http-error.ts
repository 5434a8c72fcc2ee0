import type { ServerResponse } from 'node:http';
import { ScopeGateError, type ErrorCode } from './errors.ts';

/**
 * Writes one error as SPEC §3's JSON error body with its catalogue status. The one place an error becomes an
 * HTTP response, for every server of the project: the sidecar's Express app and its fast path, and the
 * broker's metrics server.
 */
export function sendError(res: ServerResponse, error: ScopeGateError | ErrorCode, headers: Record<string, string> = {}): void {
  const e = typeof error === 'string' ? new ScopeGateError(error) : error;
  const body = JSON.stringify(e.toBody());
  res.writeHead(e.status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
