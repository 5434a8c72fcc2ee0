import type { Logger } from 'pino';
import { ScopeGateError, isScopeGateError } from '../../shared/errors.ts';

/**
 * Turns anything a request handler threw into the catalogue error the client sees: ScopeGateErrors as they
 * are, errors of the HTTP layer reading the request as 4xx, and anything else logged and answered as a
 * generic INTERNAL without internals. Shared by the Express error handler and the fast path.
 */
export function toClientError(err: unknown, log: Logger): ScopeGateError {
  if (isScopeGateError(err)) return err;
  if (isClientError(err)) {
    // body-parser's errors (type set), and those of the router and zlib (status 4xx, no type): a URL path
    // that is not valid percent-encoding, a body whose content-encoding does not decode.
    if (err.type === 'entity.too.large') return new ScopeGateError('PAYLOAD_TOO_LARGE');
    if (err.type === 'entity.parse.failed') return new ScopeGateError('INVALID_JSON');
    if (err instanceof URIError) return new ScopeGateError('BAD_REQUEST', 'The URL is not valid percent-encoding.');
    return new ScopeGateError('BAD_REQUEST', 'The request body could not be read.');
  }
  log.error({ err }, 'unexpected error');
  return new ScopeGateError('INTERNAL');
}

/** An error the HTTP layer raised while reading the request: body-parser's (typed), or the router's or zlib's (4xx). */
function isClientError(e: unknown): e is { type?: string; status: number } {
  if (typeof e !== 'object' || e === null) return false;
  const { status, type } = e as { status?: unknown; type?: unknown };
  return typeof status === 'number' && (typeof type === 'string' || (status >= 400 && status < 500));
}
