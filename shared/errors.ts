/**
 * The one error catalogue of ScopeGate: a stable code, an HTTP status and a default message each.
 * Everything a client can see as an error comes from here; outside errors (Redis, jose, JSON parsing)
 * are converted into one of these once, at the boundary where they arise.
 */
export const ERROR_CATALOGUE = {
  BAD_REQUEST: { status: 400, message: 'The request is malformed.' },
  VALIDATION_FAILED: { status: 400, message: 'The request body or query does not match the schema.' },
  INVALID_JSON: { status: 400, message: 'The request body is not valid JSON.' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'The request body is too large.' },
  UNAUTHENTICATED: { status: 401, message: 'A valid bearer token is required.' },
  FORBIDDEN: { status: 403, message: 'The token may not act on this resource.' },
  NOT_FOUND: { status: 404, message: 'No such resource.' },
  ROUTE_NOT_FOUND: { status: 404, message: 'No such route.' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'Method not allowed on this route.' },
  ALREADY_EXISTS: { status: 409, message: 'A resource with this id or unique key already exists.' },
  STILL_REFERENCED: { status: 409, message: 'The resource is still referenced; delete the dependents first or pass ?cascade=true.' },
  LIMIT_EXCEEDED: { status: 409, message: 'A tenant limit would be exceeded.' },
  WRITE_CONFLICT: { status: 409, message: 'Concurrent writes kept conflicting; retry the request.' },
  INVALID_REFERENCE: { status: 422, message: 'The request refers to a resource that does not exist.' },
  HIERARCHY_VIOLATION: { status: 422, message: 'The scope type may not be created under this parent scope type.' },
  SCOPE_CYCLE: { status: 422, message: 'A scope cannot move under itself or one of its own descendants.' },
  CROSS_TENANT: { status: 422, message: 'The request would link resources of different tenants.' },
  RULE_VIOLATION: { status: 422, message: 'The request breaks a rule of the authorization model.' },
  RATE_LIMITED: { status: 429, message: 'Too many requests; slow down.' },
  STORE_UNAVAILABLE: { status: 503, message: 'The store is unreachable; nothing was changed.' },
  STORE_NOT_REPLICATED: { status: 503, message: 'The change was applied on the Redis master but no replica confirmed it in time; it may be lost if the master fails now. Read it back before retrying.' },
  NOT_FRESH_ENOUGH: { status: 503, message: 'This replica has not yet seen the requested revision; retry shortly.' },
  INTERNAL: { status: 500, message: 'Internal error.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export interface ErrorDetail {
  path?: string;
  message: string;
  [key: string]: unknown;
}

/** The JSON body of every error response (SPEC §3). */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details: ErrorDetail[] };
}

export class ScopeGateError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: ErrorDetail[];

  constructor(code: ErrorCode, message?: string, details: ErrorDetail[] = []) {
    super(message ?? ERROR_CATALOGUE[code].message);
    this.name = 'ScopeGateError';
    this.code = code;
    this.status = ERROR_CATALOGUE[code].status;
    this.details = details;
  }

  toBody(): ErrorBody {
    return { error: { code: this.code, message: this.message, details: this.details } };
  }
}

export function isScopeGateError(e: unknown): e is ScopeGateError {
  return e instanceof ScopeGateError;
}

/** Shorthand for the reference error the service throws most often. */
export const invalidReference = (field: string, kind: string, id: string) =>
  new ScopeGateError('INVALID_REFERENCE', `${field} refers to ${kind} '${truncate(id)}', which does not exist.`, [
    { path: field, message: `no such ${kind}`, id: truncate(id) },
  ]);

/** Keep user input short when it is echoed in messages and logs. */
export function truncate(value: string, max = 80): string {
  return value.length > max ? `${value.slice(0, max)}…` : value;
}
