import { ScopeGateError } from '../../shared/errors.ts';
import type { RouteDoc } from '../routes/registry.ts';

/**
 * What to answer for a request no route took: 405 with the methods the path does have (so `PUT /v1/tenants`
 * says what it may do instead of claiming the route does not exist), or 404 with a hint when the same path
 * exists under `/v1` (the most common slip: `GET /tenants`).
 */
export function unmatchedRoute(routes: RouteDoc[], method: string, path: string): { error: ScopeGateError; allow?: string } {
  const shown = path.slice(0, 200);
  const allow = methodsFor(routes, path);
  // A method the path does have (GET of a console file that does not exist, say) found nothing: 404, not 405.
  if (allow.length > 0 && !allow.includes(method.toUpperCase())) {
    return {
      error: new ScopeGateError('METHOD_NOT_ALLOWED', `${method} is not allowed on ${shown}; allowed: ${allow.join(', ')}.`, [{ message: 'method not allowed', allow }]),
      allow: allow.join(', '),
    };
  }
  const hint = !path.startsWith('/v1/') && methodsFor(routes, `/v1${path}`).length > 0 ? ` Did you mean /v1${shown}? Every API route is under /v1.` : '';
  return { error: new ScopeGateError('ROUTE_NOT_FOUND', `No route ${method} ${shown}.${hint}`) };
}

/** The HTTP methods (upper case, HEAD with GET) of the documented routes whose path template matches `path`. */
function methodsFor(routes: RouteDoc[], path: string): string[] {
  const methods = new Set<string>();
  for (const r of routes) {
    const full = `${r.root ? '' : '/v1'}${r.path}`;
    if (templateMatches(full, path)) methods.add(r.method.toUpperCase());
  }
  if (methods.has('GET')) methods.add('HEAD');
  return [...methods].sort();
}

function templateMatches(template: string, path: string): boolean {
  const want = template.split('/');
  const got = path.replace(/\/+$/, '').split('/');
  if (want.length !== got.length) return false;
  return want.every((w, i) => (w.startsWith('{') && w.endsWith('}') ? got[i]!.length > 0 : w === got[i]));
}
