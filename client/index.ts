/**
 * A typed client for the whole ScopeGate admin API. Request bodies are typed from the same zod schemas that
 * validate them on the server; errors are thrown as ScopeGateApiError carrying the stable error code.
 *
 *   const sg = new ScopeGateClient({ baseUrl: 'http://127.0.0.1:8080', token: process.env.AUTHZ_ADMIN_TOKEN! });
 *   const tenant = await sg.tenants.create({ name: 'Acme Corp', slug: 'acme-corp' });
 */
import type { z } from 'zod';
import type { evaluateRequestSchema } from '../authz-sidecar/decisions/evaluate-request.ts';
import type { RequestBody as Input } from '../authz-sidecar/service/inputs.ts';
import type { ErrorBody, ErrorCode, ErrorDetail } from '../shared/errors.ts';

export class ScopeGateApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode | 'NETWORK_ERROR' | 'UNEXPECTED_RESPONSE',
    message: string,
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
    this.name = 'ScopeGateApiError';
  }
}

/** The answer of POST /v1/mqtt/explain. */
export interface MqttExplanation {
  decision: 'ALLOWED' | 'DENIED';
  reason?: string;
  actor: { actorId: string; subjectId: string; tenantId: string; projectId: string; accessScopeId: string | null; disabled: boolean };
  internalTopic: string | null;
  steps: Array<{ step: 'actor' | 'topic_rules' | 'app_grant' | 'rbac' | 'namespace'; ok: boolean } & Record<string, unknown>>;
  revision: number;
}

/** One live MQTT session as `GET /v1/sessions` shows it. */
export interface LiveSession {
  sessionId: string;
  brokerId: string;
  clientId: string;
  actorId: string;
  tenantId: string;
  projectId: string;
  accessScopeId: string | null;
  scopePath: string[];
  connectedAt: string;
  state: 'connecting' | 'connected';
  subscriptions: string[];
  remoteAddress?: string;
}

export interface ClientOptions {
  baseUrl: string;
  token: string;
  fetch?: typeof fetch;
}

/** Every write answers with the new revision; every read with the revision it reflects. */
export interface Revisioned {
  revision: number;
}
export interface Page<T> {
  data: T[];
  nextCursor: string | null;
  revision: number;
}
export interface Deleted extends Revisioned {
  deleted: Array<{ kind: string; id: string }>;
}
export interface Resource {
  id: string;
  tenantId: string | null;
  createdAt: string;
  updatedAt: string;
  [field: string]: unknown;
}
/** A delegation grant: `actorId` may act on behalf of `principalSubjectId` until `expiresAt`. */
export interface Delegation {
  actorId: string;
  principalSubjectId: string;
  expiresAt: string;
  createdBy: string;
}
export interface ScopedEntity extends Resource {
  scopeId: string;
  name: string;
  slug: string;
}
export interface Decision {
  decision: 'ALLOWED' | 'DENIED';
  reason?: string;
  grant?: Record<string, string>;
  path: string[];
  trace?: Array<Record<string, unknown>>;
  revision: number;
}
export type EvaluateRequest = z.input<typeof evaluateRequestSchema>;
export interface ListQuery {
  limit?: number;
  cursor?: string;
  [filter: string]: string | number | undefined;
}

export class ScopeGateClient {
  private readonly baseUrl: string;
  private readonly token: string;
  private readonly fetchImpl: typeof fetch;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.token = options.token;
    this.fetchImpl = options.fetch ?? fetch;
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await this.fetchImpl(`${this.baseUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (e) {
      throw new ScopeGateApiError(0, 'NETWORK_ERROR', `Cannot reach ${this.baseUrl}: ${(e as Error).message}`);
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      throw new ScopeGateApiError(res.status, 'UNEXPECTED_RESPONSE', `${method} ${path}: not JSON (${res.status})`);
    }
    if (!res.ok) {
      const err = (parsed as ErrorBody | undefined)?.error;
      throw new ScopeGateApiError(res.status, err?.code ?? 'UNEXPECTED_RESPONSE', err?.message ?? `${method} ${path} failed with ${res.status}`, err?.details ?? []);
    }
    return parsed as T;
  }

  private resource<C, P, R extends Resource = Resource>(path: string) {
    return {
      get: (id: string) => this.request<R & Revisioned>('GET', `${path}/${encodeURIComponent(id)}`),
      list: (query: ListQuery = {}) => this.request<Page<R>>('GET', `${path}${qs(query)}`),
      update: (id: string, input: P) => this.request<R & Revisioned>('PATCH', `${path}/${encodeURIComponent(id)}`, input),
      delete: (id: string, options: { cascade?: boolean } = {}) => this.request<Deleted>('DELETE', `${path}/${encodeURIComponent(id)}${options.cascade ? '?cascade=true' : ''}`),
      create: (input: C) => this.request<R & Revisioned>('POST', path, input),
      createBatch: (items: C[]) => this.request<{ data: R[]; revision: number }>('POST', `${path}/batch`, items),
    };
  }

  readonly tenants = this.resource<Input<'tenantCreate'>, Input<'tenantPatch'>, ScopedEntity>('/v1/tenants');
  readonly workspaces = this.resource<Input<'workspaceCreate'>, Input<'entityPatch'>, ScopedEntity>('/v1/workspaces');
  readonly projects = this.resource<Input<'projectCreate'>, Input<'limitedEntityPatch'>, ScopedEntity>('/v1/projects');
  readonly environments = this.resource<Input<'environmentCreate'>, Input<'entityPatch'>, ScopedEntity>('/v1/environments');
  readonly scopes = this.resource<Input<'scopeCreate'>, Input<'limitedEntityPatch'>>('/v1/scopes');
  readonly scopeTypes = this.resource<Input<'scopeTypeCreate'>, Input<'scopeTypePatch'>>('/v1/scope-types');
  readonly scopeTypeHierarchy = this.resource<Input<'scopeTypeEdgeCreate'>, never>('/v1/scope-type-hierarchy');
  readonly roles = this.resource<Input<'roleCreate'>, Input<'rolePatch'>>('/v1/roles');
  readonly permissions = this.resource<Input<'permissionCreate'>, never>('/v1/permissions');
  readonly rolePermissions = this.resource<Input<'rolePermissionCreate'>, never>('/v1/role-permissions');
  readonly users = this.resource<Input<'userCreate'>, Input<'userPatch'>>('/v1/users');
  readonly memberships = this.resource<Input<'membershipCreate'>, never>('/v1/memberships');
  readonly roleAssignments = this.resource<Input<'roleAssignmentCreate'>, never>('/v1/role-assignments');
  readonly permissionOverrides = this.resource<Input<'permissionOverride'>, never>('/v1/scope-overrides/permissions');
  readonly rolePermissionOverrides = this.resource<Input<'rolePermissionOverride'>, never>('/v1/scope-overrides/role-permissions');
  readonly apiKeys = {
    ...this.resource<Input<'apiKeyCreate'>, never>('/v1/api-keys'),
    create: (input: Input<'apiKeyCreate'>) => this.request<Resource & Revisioned & { key: string }>('POST', '/v1/api-keys', input),
  };

  evaluate(request: EvaluateRequest, options: { explain?: boolean } = {}): Promise<Decision> {
    return this.request('POST', `/v1/evaluate${options.explain ? '?explain=true' : ''}`, request);
  }

  evaluateBatch(requests: EvaluateRequest[], options: { explain?: boolean } = {}): Promise<{ results: Array<Decision | ErrorBody>; revision: number }> {
    return this.request('POST', `/v1/evaluate/batch${options.explain ? '?explain=true' : ''}`, { requests });
  }

  /**
   * The audit log, newest first. Filters: `principal` ('admin' or an API key id), `action` (exact, or a prefix
   * ending in '*'), `since`/`until` (ISO 8601 instants, inclusive). A filtered page may be short while
   * `nextBefore` is set: the server scans a bounded number of entries per request.
   */
  audit(query: { limit?: number; before?: number; tenantId?: string; principal?: string; action?: string; since?: string; until?: string } = {}) {
    return this.request<{ data: Array<Record<string, unknown> & { seq: number; action: string; principal: string; at: string }>; nextBefore: number | null }>('GET', `/v1/audit${qs(query)}`);
  }

  /** Own and effective MQTT limits at a scope (SPEC §7). */
  limitsAt(scopeId: string) {
    return this.request<{ scopeId: string; own: Record<string, unknown> | null; effective: { session: Record<string, number | null>; sources: Record<string, { value: number; scopeId: string }>; subtrees: Array<Record<string, unknown>> }; revision: number }>(
      'GET',
      `/v1/scopes/${encodeURIComponent(scopeId)}/limits`,
    );
  }

  /** What the broker would decide for an actor's publish or subscribe, and why (app grant, topic rules, rbac, namespace). */
  mqttExplain(request: { actorId: string; topic: string; action: 'publish' | 'subscribe' }) {
    return this.request<MqttExplanation>('POST', '/v1/mqtt/explain', request);
  }

  /** Live MQTT sessions (the brokers' session ledger); `scopeId` = that scope's whole subtree. */
  sessions(query: { tenantId?: string; projectId?: string; scopeId?: string; actorId?: string; brokerId?: string; limit?: number } = {}) {
    return this.request<{ data: LiveSession[]; total: number }>('GET', `/v1/sessions${qs(query)}`);
  }

  /** Asks the owning broker to close a live session (it leaves the list once closed). */
  disconnectSession(sessionId: string) {
    return this.request<{ sessionId: string; brokerId: string; status: 'disconnect_requested' }>('POST', `/v1/sessions/${encodeURIComponent(sessionId)}/disconnect`);
  }

  jwks(): Promise<{ keys: Array<Record<string, unknown>> }> {
    return this.request('GET', '/.well-known/jwks.json');
  }

  /** Seed 000's routes: access scopes, actors, apps and credentials inside one organization's project. */
  project(orgId: string, projectId: string) {
    const base = `/v1/organizations/${encodeURIComponent(orgId)}/projects/${encodeURIComponent(projectId)}`;
    const sub = <C, P, R extends Resource = Resource>(path: string) => {
      const r = this.resource<C, P, R>(`${base}${path}`);
      return { get: r.get, list: r.list, update: r.update, delete: r.delete, create: r.create };
    };
    return {
      scopes: {
        ...sub<Input<'accessScopeCreate'>, Input<'accessScopePatch'>, Resource & { accessScopeId: string; slug: string; parentId: string | null }>('/scopes'),
        /** Moves an access scope and its subtree under another access scope of the project (null: the project level). */
        move: (scopeId: string, parentScopeId: string | null) =>
          this.request<Resource & Revisioned & { accessScopeId: string; slug: string; parentId: string | null }>('PATCH', `${base}/scopes/${encodeURIComponent(scopeId)}`, { parentScopeId }),
      },
      actors: {
        ...sub<Input<'actorCreate'>, Input<'actorPatch'>, Resource & { actorId: string; subjectId: string; accessScopeId: string | null; disabled: boolean }>('/actors'),
        issueToken: (actorId: string, input: Partial<Input<'tokenCreate'>> = {}) =>
          this.request<{ actorId: string; token: string; expiresAt: string; mqtt: { username: string; password: string }; onBehalfOf?: string; delegationId?: string }>('POST', `${base}/actors/${encodeURIComponent(actorId)}/tokens`, input),
        issueSecret: (actorId: string) =>
          this.request<Resource & Revisioned & { secretId: string; secret: string; mqtt: { username: string; password: string } }>('POST', `${base}/actors/${encodeURIComponent(actorId)}/secrets`, {}),
        listSecrets: (actorId: string) => this.request<Page<Resource>>('GET', `${base}/actors/${encodeURIComponent(actorId)}/secrets`),
        revokeSecret: (actorId: string, secretId: string) => this.request<Deleted>('DELETE', `${base}/actors/${encodeURIComponent(actorId)}/secrets/${encodeURIComponent(secretId)}`),
        /**
         * Delegation grants (on-behalf-of). Called with an admin token or API key, or as the principal itself
         * (a client whose token is the principal actor's own JWT, or a user's identity-provider JWT).
         */
        grantDelegation: (actorId: string, input: { subjectId: string; expiresInSeconds?: number }) =>
          this.request<Resource & Revisioned & Delegation>('POST', `${base}/actors/${encodeURIComponent(actorId)}/delegations`, input),
        listDelegations: (actorId: string) => this.request<Page<Resource & Delegation>>('GET', `${base}/actors/${encodeURIComponent(actorId)}/delegations`),
        revokeDelegation: (actorId: string, delegationId: string) =>
          this.request<Deleted>('DELETE', `${base}/actors/${encodeURIComponent(actorId)}/delegations/${encodeURIComponent(delegationId)}`),
      },
      apps: {
        ...sub<Input<'appCreate'>, Input<'appPatch'>, Resource & { appId: string; slug: string; mode: 'open' | 'rbac' }>('/apps'),
        grant: (appId: string, actorId: string) => this.request<Resource & Revisioned>('POST', `${base}/apps/${encodeURIComponent(appId)}/actors`, { actorId }),
        grants: (appId: string) => this.request<Page<Resource & { actorId: string }>>('GET', `${base}/apps/${encodeURIComponent(appId)}/actors`),
        revoke: (appId: string, actorId: string) => this.request<Deleted>('DELETE', `${base}/apps/${encodeURIComponent(appId)}/actors/${encodeURIComponent(actorId)}`),
      },
    };
  }
}

function qs(query: Record<string, string | number | undefined>): string {
  const entries = Object.entries(query).filter((e): e is [string, string | number] => e[1] !== undefined);
  return entries.length === 0 ? '' : `?${new URLSearchParams(entries.map(([k, v]) => [k, String(v)])).toString()}`;
}
