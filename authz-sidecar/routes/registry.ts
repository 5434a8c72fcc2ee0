import type { z } from 'zod';

/**
 * Every route the sidecar mounts, with the schemas that validate it. The OpenAPI document is generated from
 * this list, and a test checks that every mounted Express route appears in it.
 */
export interface RouteDoc {
  method: 'get' | 'post' | 'patch' | 'delete' | 'put';
  /** OpenAPI-style path under /v1, e.g. '/tenants/{id}'. */
  path: string;
  tag: string;
  summary: string;
  /** Longer text for the OpenAPI operation (who may call it, when the summary cannot say it all). */
  description?: string;
  body?: z.ZodType;
  query?: z.ZodType;
  filters?: string[];
  status?: number;
  /** The success answer's body (http/responses.ts); the OpenAPI document and the response tests use it. */
  response?: z.ZodType;
  /** Media type of the success answer when it is not JSON (metrics, the change feed). */
  contentType?: string;
  /** Routes outside /v1 (health) or without bearer auth. */
  root?: boolean;
  public?: boolean;
}

export class RouteRegistry {
  private readonly routes = new Map<string, RouteDoc>();

  add(doc: RouteDoc): void {
    this.routes.set(`${doc.method} ${doc.root ? '' : '/v1'}${doc.path}`, doc);
  }

  all(): RouteDoc[] {
    return [...this.routes.values()];
  }
}
