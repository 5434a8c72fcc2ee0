import { randomBytes } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { activeDelegation } from '../engine/delegation.ts';
import { createDelegation } from '../service/delegation.ts';
import { z } from 'zod';
import { ScopeGateError } from '../../shared/errors.ts';
import { hashSecret, newSecret } from '../credentials/secrets.ts';
import { signActorToken } from '../credentials/signing-keys.ts';
import { canSee, principalInside } from '../access/principal.ts';
import { sha256 } from '../http/auth.ts';
import { present } from '../http/present.ts';
import * as responses from '../http/responses.ts';
import { queries } from '../http/queries.ts';
import { inputSchemas } from '../service/inputs.ts';
import { parse } from '../http/validate.ts';
import type { RecordKind, RecordOf, StoredRecord } from '../model/records.ts';
import { deleteRecord } from '../service/delete.ts';
import {
  actorIn,
  appIn,
  createAccessScope,
  createActor,
  createApp,
  findGrant,
  grantApp,
  patchAccessScope,
  patchActor,
  patchApp,
  projectIn,
} from '../service/messaging.ts';
import { Tx } from '../service/tx.ts';
import type { SidecarContext } from './context.ts';
import { findVisible, mountResource, principalOf, writeContext } from './resource.ts';

const BASE = '/organizations/:orgId/projects/:projectId';
const DOC_BASE = '/organizations/{orgId}/projects/{projectId}';
/** Who may call the delegation-grant routes besides an admin (routes/delegation-self-service.ts). */
const SELF_SERVICE =
  "Bearer: the admin token or an API key over the actor's scope; or the principal itself: an actor with its own (not delegated) ScopeGate JWT, or a user with a JWT of the configured identity provider (TRUSTED_JWT_ISSUER) whose sub is the user's kindeId.";

/**
 * Seed 000's routes as written (an organization is a tenant): access scopes, actors, apps, app grants, and
 * actor credentials (JWTs and secrets); plus admin API keys.
 */
export function messagingRoutes(ctx: SidecarContext, tokenIssuer: string): Router {
  const r = Router({ mergeParams: true });
  const model = () => ctx.replica.model;
  const readTx = () => new Tx(model(), ctx.clock().toISOString());
  const param = (req: Request, name: string) => String(req.params[name]);
  /**
   * The project named by the URL, visible to the caller. The access-scope routes (`reach: 'subtree'`) also
   * accept an API key whose subtree lies inside the project, i.e. a key for one of its access scopes: there it
   * lists, creates, renames and moves the scopes of its own subtree (reads filtered, writes guarded). Actors,
   * apps and credentials stay the project's business.
   */
  const project = (req: Request, res: Response, reach: 'visible' | 'subtree' = 'visible') => {
    const p = projectIn(readTx(), param(req, 'orgId'), param(req, 'projectId'));
    if (!(reach === 'subtree' && principalInside(model(), principalOf(res), p.scopeId))) findVisible(ctx, res, 'project', p.id, 'project');
    return p;
  };
  const write = <T>(req: Request, res: Response, action: string, build: (tx: Tx) => T) => ctx.writer.write(writeContext(req, res), action, build);
  const doc = (method: 'get' | 'post' | 'patch' | 'delete', path: string, tag: string, summary: string, response: z.ZodType, body?: z.ZodType, status?: number, description?: string) =>
    ctx.routes.add({ method, path: `${DOC_BASE}${path}`, tag, summary, response, ...(body ? { body } : {}), ...(status ? { status } : {}), ...(description ? { description } : {}) });
  const list = <K extends RecordKind>(res: Response, kind: K, pred: (r: RecordOf<K>) => boolean) => {
    const items: StoredRecord[] = [];
    for (const rec of model().all(kind)) if (pred(rec) && canSee(model(), principalOf(res), rec)) items.push(rec);
    items.sort((a, b) => (a.id < b.id ? -1 : 1));
    return { data: items.map(present), revision: ctx.replica.seq };
  };

  // Access scopes
  doc('post', '/scopes', 'access_scope', 'Create an access scope in the project (→ accessScopeId)', responses.oneOf('scope'), inputSchemas.accessScopeCreate, 201);
  r.post(`${BASE}/scopes`, async (req, res) => {
    const input = parse(inputSchemas.accessScopeCreate, req.body, 'body');
    const p = project(req, res, 'subtree');
    const { value, revision } = await write(req, res, 'access_scope.create', (tx) => createAccessScope(tx, projectIn(tx, p.tenantId, p.id), input));
    res.status(201).json({ ...present(value), revision });
  });
  doc('get', '/scopes', 'access_scope', 'List the access scopes of the project', responses.listOf('scope'));
  r.get(`${BASE}/scopes`, (req, res) => {
    const p = project(req, res, 'subtree');
    res.json(list(res, 'scope', (s) => s.typeId === 'type_access' && model().ancestry(s.id).some((a) => a.id === p.scopeId)));
  });
  const accessScope = (req: Request, res: Response) => {
    const p = project(req, res, 'subtree');
    const s = model().get('scope', param(req, 'scopeId'));
    if (!s || s.typeId !== 'type_access' || !model().ancestry(s.id).some((a) => a.id === p.scopeId)) throw new ScopeGateError('NOT_FOUND', 'No such access scope in this project.');
    return findVisible(ctx, res, 'scope', s.id, 'access scope');
  };
  doc('get', '/scopes/{scopeId}', 'access_scope', 'Read one access scope', responses.oneOf('scope'));
  r.get(`${BASE}/scopes/:scopeId`, (req, res) => {
    res.json({ ...present(accessScope(req, res)), revision: ctx.replica.seq });
  });
  doc('patch', '/scopes/{scopeId}', 'access_scope', 'Rename an access scope, set the limits of its subtree, or move it with its subtree (parentScopeId: an access scope of the project, or null for the project level)', responses.oneOf('scope'), inputSchemas.accessScopePatch);
  r.patch(`${BASE}/scopes/:scopeId`, async (req, res) => {
    const input = parse(inputSchemas.accessScopePatch, req.body, 'body');
    const p = project(req, res, 'subtree');
    const s = accessScope(req, res);
    // A move is audited as such: its entry's before/after show the old and the new parentId.
    const action = input.parentScopeId !== undefined ? 'access_scope.move' : 'access_scope.update';
    const { value, revision } = await write(req, res, action, (tx) => patchAccessScope(tx, projectIn(tx, p.tenantId, p.id), tx.must('scope', s.id), input));
    res.json({ ...present(value), revision });
  });
  doc('delete', '/scopes/{scopeId}', 'access_scope', 'Delete an access scope (?cascade=true)', responses.deletedResponse);
  r.delete(`${BASE}/scopes/:scopeId`, async (req, res) => {
    const cascade = parse(queries.deleteQuery, req.query, 'query').cascade === 'true';
    const s = accessScope(req, res);
    const { value, revision } = await write(req, res, 'access_scope.delete', (tx) => deleteRecord(tx, tx.must('scope', s.id), cascade));
    res.json({ deleted: value.map((d) => ({ kind: d.kind, id: d.id })), revision });
  });

  // Actors
  doc('post', '/actors', 'actor', 'Create an actor (→ actorId)', responses.oneOf('actor'), inputSchemas.actorCreate, 201);
  r.post(`${BASE}/actors`, async (req, res) => {
    const input = parse(inputSchemas.actorCreate, req.body, 'body');
    const p = project(req, res);
    const { value, revision } = await write(req, res, 'actor.create', (tx) => createActor(tx, projectIn(tx, p.tenantId, p.id), input));
    res.status(201).json({ ...present(value), revision });
  });
  doc('get', '/actors', 'actor', 'List the actors of the project', responses.listOf('actor'));
  r.get(`${BASE}/actors`, (req, res) => {
    const p = project(req, res);
    res.json(list(res, 'actor', (a) => a.projectId === p.id));
  });
  const actor = (req: Request, res: Response) => {
    const p = project(req, res);
    const a = actorIn(readTx(), p, param(req, 'actorId'));
    return { p, a: findVisible(ctx, res, 'actor', a.id, 'actor') };
  };
  doc('get', '/actors/{actorId}', 'actor', 'Read one actor', responses.oneOf('actor'));
  r.get(`${BASE}/actors/:actorId`, (req, res) => {
    res.json({ ...present(actor(req, res).a), revision: ctx.replica.seq });
  });
  doc('patch', '/actors/{actorId}', 'actor', 'Move (accessScopeId), rename or disable an actor', responses.oneOf('actor'), inputSchemas.actorPatch);
  r.patch(`${BASE}/actors/:actorId`, async (req, res) => {
    const input = parse(inputSchemas.actorPatch, req.body, 'body');
    const { p, a } = actor(req, res);
    const { value, revision } = await write(req, res, 'actor.update', (tx) => patchActor(tx, projectIn(tx, p.tenantId, p.id), tx.must('actor', a.id), input));
    res.json({ ...present(value), revision });
  });
  doc('delete', '/actors/{actorId}', 'actor', 'Delete an actor (?cascade=true removes its grants, memberships and secrets)', responses.deletedResponse);
  r.delete(`${BASE}/actors/:actorId`, async (req, res) => {
    const cascade = parse(queries.deleteQuery, req.query, 'query').cascade === 'true';
    const { a } = actor(req, res);
    const { value, revision } = await write(req, res, 'actor.delete', (tx) => deleteRecord(tx, tx.must('actor', a.id), cascade));
    res.json({ deleted: value.map((d) => ({ kind: d.kind, id: d.id })), revision });
  });

  // Credentials
  doc('post', '/actors/{actorId}/tokens', 'actor', 'Issue a JWT for MQTT CONNECT (password; username = actorId)', responses.tokenIssued, inputSchemas.tokenCreate, 201);
  r.post(`${BASE}/actors/:actorId/tokens`, async (req, res) => {
    const input = parse(inputSchemas.tokenCreate, req.body ?? {}, 'body');
    const { a } = actor(req, res);
    if (a.disabled) throw new ScopeGateError('RULE_VIOLATION', 'This actor is disabled.');
    if (input.onBehalfOf) {
      // RFC 8693: sub = the principal, act.sub = this actor; only with a delegation grant in force, and never
      // outliving it.
      const now = ctx.clock();
      const principalId = model().subject(input.onBehalfOf.subjectId)?.subjectId ?? input.onBehalfOf.subjectId;
      const grant = activeDelegation(model(), a.id, principalId, now.getTime());
      if (!grant) throw new ScopeGateError('FORBIDDEN', 'No delegation grant in force for this actor and principal.', [{ path: 'body.onBehalfOf.subjectId', message: 'no delegation grant' }]);
      const ttlSeconds = Math.max(1, Math.min(input.ttlSeconds, Math.floor((Date.parse(grant.expiresAt) - now.getTime()) / 1000)));
      const { token, expiresAt } = await signActorToken(model(), tokenIssuer, { actorId: a.id, tenantId: a.tenantId, ttlSeconds, onBehalfOf: principalId }, now);
      (res.locals.log as Logger).info({ by: principalOf(res).id, agent: a.id, onBehalfOf: principalId, delegationId: grant.id, expiresAt }, 'delegated token issued');
      res.status(201).json({ actorId: a.id, onBehalfOf: principalId, delegationId: grant.id, token, tokenType: 'Bearer', expiresAt, mqtt: { username: a.id, password: token } });
      return;
    }
    const { token, expiresAt } = await signActorToken(model(), tokenIssuer, { actorId: a.id, tenantId: a.tenantId, ttlSeconds: input.ttlSeconds }, ctx.clock());
    // Issuing a credential is audited like a write (never the token itself); no audit entry, no token.
    await write(req, res, 'actor_token.issue', (tx) => {
      const current = tx.must('actor', a.id);
      tx.note({ kind: 'actorToken', tenantId: current.tenantId, actorId: current.id, expiresAt, ttlSeconds: input.ttlSeconds });
    });
    res.status(201).json({ actorId: a.id, token, tokenType: 'Bearer', expiresAt, mqtt: { username: a.id, password: token } });
  });

  // Delegation grants (on-behalf-of): managed by an admin here, or by the principal itself (delegationSelfService)
  doc('post', '/actors/{actorId}/delegations', 'actor', 'Let the actor act on behalf of a principal (user or actor of its tenant) for a bounded time', responses.oneOf('delegation'), inputSchemas.delegationCreate, 201, `${SELF_SERVICE} A principal may only name itself as subjectId (else 403 FORBIDDEN), only for an actor of kind agent (else 422 RULE_VIOLATION), and a user only for an agent of a project where it holds a membership at, above or inside the project (else 403 FORBIDDEN).`);
  r.post(`${BASE}/actors/:actorId/delegations`, async (req, res) => {
    const input = parse(inputSchemas.delegationCreate, req.body ?? {}, 'body');
    const { a } = actor(req, res);
    const { value, revision } = await write(req, res, 'delegation.create', (tx) => createDelegation(tx, a, input.subjectId, input.expiresInSeconds, principalOf(res).id));
    res.status(201).json({ ...present(value), revision });
  });
  doc('get', '/actors/{actorId}/delegations', 'actor', "List an actor's delegation grants", responses.listOf('delegation'), undefined, undefined, `${SELF_SERVICE} A principal sees only its own grants.`);
  r.get(`${BASE}/actors/:actorId/delegations`, (req, res) => {
    const { a } = actor(req, res);
    res.json(list(res, 'delegation', (d) => d.actorId === a.id));
  });
  doc('delete', '/actors/{actorId}/delegations/{delegationId}', 'actor', 'Revoke a delegation grant (sessions acting on it close)', responses.deletedResponse, undefined, undefined, `${SELF_SERVICE} A principal revokes only its own grants (another's is 404 NOT_FOUND).`);
  r.delete(`${BASE}/actors/:actorId/delegations/:delegationId`, async (req, res) => {
    const { a } = actor(req, res);
    const d = model().get('delegation', param(req, 'delegationId'));
    if (!d || d.actorId !== a.id) throw new ScopeGateError('NOT_FOUND', 'No such delegation grant for this actor.');
    const { value, revision } = await write(req, res, 'delegation.delete', (tx) => deleteRecord(tx, tx.must('delegation', d.id), false));
    res.json({ deleted: value.map((x) => ({ kind: x.kind, id: x.id })), revision });
  });
  doc('post', '/actors/{actorId}/secrets', 'actor', 'Issue a secret (shown once, stored hashed)', responses.secretIssued, undefined, 201);
  r.post(`${BASE}/actors/:actorId/secrets`, async (req, res) => {
    const { a } = actor(req, res);
    const { secret, prefix } = newSecret();
    const hash = await hashSecret(secret);
    const { value, revision } = await write(req, res, 'actor_secret.create', (tx) =>
      tx.put({ kind: 'actorSecret', ...tx.base('actorSecret'), tenantId: a.tenantId, actorId: tx.must('actor', a.id).id, hash, prefix }),
    );
    res.status(201).json({ ...present(value), secretId: value.id, secret, mqtt: { username: a.id, password: secret }, revision });
  });
  doc('get', '/actors/{actorId}/secrets', 'actor', 'List an actor\'s secrets (never their values)', responses.listOf('actorSecret'));
  r.get(`${BASE}/actors/:actorId/secrets`, (req, res) => {
    const { a } = actor(req, res);
    res.json(list(res, 'actorSecret', (s) => s.actorId === a.id));
  });
  doc('delete', '/actors/{actorId}/secrets/{secretId}', 'actor', 'Revoke a secret', responses.deletedResponse);
  r.delete(`${BASE}/actors/:actorId/secrets/:secretId`, async (req, res) => {
    const { a } = actor(req, res);
    const secret = model().get('actorSecret', param(req, 'secretId'));
    if (!secret || secret.actorId !== a.id) throw new ScopeGateError('NOT_FOUND', 'No such secret for this actor.');
    const { value, revision } = await write(req, res, 'actor_secret.delete', (tx) => deleteRecord(tx, tx.must('actorSecret', secret.id), false));
    res.json({ deleted: value.map((d) => ({ kind: d.kind, id: d.id })), revision });
  });

  // Apps and grants
  doc('post', '/apps', 'app', 'Create an app (its slug is the first level of its topics)', responses.oneOf('app'), inputSchemas.appCreate, 201);
  r.post(`${BASE}/apps`, async (req, res) => {
    const input = parse(inputSchemas.appCreate, req.body, 'body');
    const p = project(req, res);
    const { value, revision } = await write(req, res, 'app.create', (tx) => createApp(tx, projectIn(tx, p.tenantId, p.id), input));
    res.status(201).json({ ...present(value), revision });
  });
  doc('get', '/apps', 'app', 'List the apps of the project', responses.listOf('app'));
  r.get(`${BASE}/apps`, (req, res) => {
    const p = project(req, res);
    res.json(list(res, 'app', (a) => a.projectId === p.id));
  });
  const app = (req: Request, res: Response) => {
    const p = project(req, res);
    return { p, app: appIn(readTx(), p, param(req, 'appId')) };
  };
  doc('get', '/apps/{appId}', 'app', 'Read one app', responses.oneOf('app'));
  r.get(`${BASE}/apps/:appId`, (req, res) => {
    res.json({ ...present(app(req, res).app), revision: ctx.replica.seq });
  });
  doc('patch', '/apps/{appId}', 'app', 'Rename an app or change its mode (open | rbac)', responses.oneOf('app'), inputSchemas.appPatch);
  r.patch(`${BASE}/apps/:appId`, async (req, res) => {
    const input = parse(inputSchemas.appPatch, req.body, 'body');
    const { app: a } = app(req, res);
    const { value, revision } = await write(req, res, 'app.update', (tx) => patchApp(tx, tx.must('app', a.id), input));
    res.json({ ...present(value), revision });
  });
  doc('delete', '/apps/{appId}', 'app', 'Delete an app (?cascade=true revokes its grants)', responses.deletedResponse);
  r.delete(`${BASE}/apps/:appId`, async (req, res) => {
    const cascade = parse(queries.deleteQuery, req.query, 'query').cascade === 'true';
    const { app: a } = app(req, res);
    const { value, revision } = await write(req, res, 'app.delete', (tx) => deleteRecord(tx, tx.must('app', a.id), cascade));
    res.json({ deleted: value.map((d) => ({ kind: d.kind, id: d.id })), revision });
  });
  doc('post', '/apps/{appId}/actors', 'app', 'Grant the app to an actor', responses.oneOf('appGrant'), inputSchemas.appActorGrant, 201);
  r.post(`${BASE}/apps/:appId/actors`, async (req, res) => {
    const input = parse(inputSchemas.appActorGrant, req.body, 'body');
    const { p, app: a } = app(req, res);
    const { value, revision } = await write(req, res, 'app_grant.create', (tx) => grantApp(tx, projectIn(tx, p.tenantId, p.id), tx.must('app', a.id), input.actorId));
    res.status(201).json({ ...present(value), revision });
  });
  doc('get', '/apps/{appId}/actors', 'app', 'List the actors granted the app', responses.listOf('appGrant'));
  r.get(`${BASE}/apps/:appId/actors`, (req, res) => {
    const { app: a } = app(req, res);
    res.json(list(res, 'appGrant', (g) => g.appId === a.id));
  });
  doc('delete', '/apps/{appId}/actors/{actorId}', 'app', 'Revoke the app from an actor', responses.deletedResponse);
  r.delete(`${BASE}/apps/:appId/actors/:actorId`, async (req, res) => {
    const { app: a } = app(req, res);
    const { value, revision } = await write(req, res, 'app_grant.delete', (tx) => deleteRecord(tx, findGrant(tx, a, param(req, 'actorId')), false));
    res.json({ deleted: value.map((d) => ({ kind: d.kind, id: d.id })), revision });
  });

  // Admin API keys, limited to one scope's subtree.
  mountResource(r, ctx, { kind: 'apiKey', path: '/api-keys', name: 'api_key', filters: ['tenantId', 'scopeId'] });
  ctx.routes.add({ method: 'post', path: '/api-keys', tag: 'api_key', summary: 'Create an API key limited to a scope subtree (shown once)', body: inputSchemas.apiKeyCreate, status: 201, response: responses.apiKeyIssued });
  r.post('/api-keys', async (req, res) => {
    const input = parse(inputSchemas.apiKeyCreate, req.body, 'body');
    const key = `sgk_${randomBytes(32).toString('base64url')}`;
    const { value, revision } = await write(req, res, 'api_key.create', (tx) => {
      const scope = tx.ref('scope', input.scopeId, 'scopeId');
      return tx.put({ kind: 'apiKey', ...tx.base('apiKey'), tenantId: scope.tenantId, scopeId: scope.id, name: input.name, hash: sha256(key), prefix: key.slice(0, 10), capabilities: [...new Set(input.capabilities)] });
    });
    res.status(201).json({ ...present(value), key, revision });
  });

  return r;
}
