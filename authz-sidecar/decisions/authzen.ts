import { z } from 'zod';
import { isScopeGateError, ScopeGateError } from '../../shared/errors.ts';
import type { Principal } from '../access/principal.ts';
import type { Decision } from '../engine/evaluate.ts';
import { uniqueKey, type PolicyModel } from '../model/policy-model.ts';
import { decideEvaluateRequest, type EvaluateRequest } from './evaluate-request.ts';

/**
 * The OpenID AuthZEN Authorization API 1.0 (final, January 2026) on ScopeGate's engine: the Access Evaluation
 * and Access Evaluations requests are mapped onto an evaluate request and decided by `decideEvaluateRequest`,
 * with the same auth and the same tenant rules as `POST /v1/evaluate`.
 *
 * Mapping:
 * - `subject.type` `user` → a user subject; `actor` (or `agent`, `device`, `service`) → an actor subject;
 *   `subject.id` is a subjectId, a user or actor id, or (users) an email address.
 * - `action.name` → the action.
 * - `resource.type` / `resource.id` → resourceType / resourceId; the target scope is `resource.properties.scopeId`.
 * - `context.onBehalfOf` (a subject id, or `{ subjectId }`) → delegation: the subject acts for that principal;
 *   `context.topic` → an MQTT topic: resourceType `topic`, resourceId the topic.
 */

const properties = z.record(z.string(), z.unknown());
const entity = z.looseObject({ type: z.string().min(1).max(64), id: z.string().min(1).max(1024), properties: properties.optional() });
const action = z.looseObject({ name: z.string().min(1).max(64), properties: properties.optional() });
const context = z.record(z.string(), z.unknown());

export const authzenEvaluationSchema = z.looseObject({ subject: entity, action, resource: entity, context: context.optional() });
export type AuthzenEvaluation = z.infer<typeof authzenEvaluationSchema>;

const SEMANTICS = ['execute_all', 'deny_on_first_deny', 'permit_on_first_permit'] as const;
const partial = z.looseObject({ subject: entity.optional(), action: action.optional(), resource: entity.optional(), context: context.optional() });
export const authzenEvaluationsSchema = z.looseObject({
  subject: entity.optional(),
  action: action.optional(),
  resource: entity.optional(),
  context: context.optional(),
  evaluations: z.array(partial).max(1000).optional(),
  options: z.looseObject({ evaluations_semantic: z.enum(SEMANTICS).optional() }).optional(),
});
export type AuthzenEvaluations = z.infer<typeof authzenEvaluationsSchema>;

export interface AuthzenDecision {
  decision: boolean;
  context?: Record<string, unknown>;
}

const ACTOR_TYPES = new Set(['actor', 'agent', 'device', 'service']);

/** One AuthZEN evaluation, decided. Mapping problems and access errors are thrown as ScopeGateErrors. */
export function decideAuthzen(model: PolicyModel, ev: AuthzenEvaluation, principal: Principal, nowMs: number): AuthzenDecision {
  const decision = decideEvaluateRequest(model, toEvaluateRequest(model, ev), false, principal, nowMs);
  return toAuthzenDecision(decision);
}

/**
 * Access Evaluations: each entry completed from the top-level defaults (an entry's own subject, action,
 * resource or context replaces the default), decided in order with the requested semantics. An entry that
 * cannot be decided (unknown scope, outside the caller's keys) is a `decision: false` with the error in its
 * context, as the specification asks, and counts as a deny. Without `evaluations`, the request is one
 * evaluation and the answer is one decision.
 */
export function decideAuthzenBatch(model: PolicyModel, body: AuthzenEvaluations, principal: Principal, nowMs: number): { evaluations: AuthzenDecision[] } | AuthzenDecision {
  const defaults = { subject: body.subject, action: body.action, resource: body.resource, context: body.context };
  if (!body.evaluations || body.evaluations.length === 0) return decideAuthzen(model, complete(defaults, 'request'), principal, nowMs);
  const semantic = body.options?.evaluations_semantic ?? 'execute_all';
  const out: AuthzenDecision[] = [];
  for (const [i, entry] of body.evaluations.entries()) {
    let answer: AuthzenDecision;
    try {
      answer = decideAuthzen(model, complete({ ...defaults, ...definedOnly(entry) }, `evaluations.${i}`), principal, nowMs);
    } catch (err) {
      if (!isScopeGateError(err)) throw err;
      const body = err.toBody().error;
      answer = { decision: false, context: { error: { status: err.status, code: body.code, message: body.message } } };
    }
    out.push(answer);
    if (semantic === 'deny_on_first_deny' && !answer.decision) break;
    if (semantic === 'permit_on_first_permit' && answer.decision) break;
  }
  return { evaluations: out };
}

function definedOnly<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function complete(e: Partial<AuthzenEvaluation>, path: string): AuthzenEvaluation {
  for (const field of ['subject', 'action', 'resource'] as const) {
    if (!e[field]) throw new ScopeGateError('VALIDATION_FAILED', `${path}: ${field} is required (in the entry or as a default).`, [{ path: `body.${path}.${field}`, message: 'required' }]);
  }
  return e as AuthzenEvaluation;
}

export function toEvaluateRequest(model: PolicyModel, ev: AuthzenEvaluation): EvaluateRequest {
  const subjectType = ev.subject.type === 'user' ? 'user' : ACTOR_TYPES.has(ev.subject.type) ? 'actor' : null;
  if (!subjectType) {
    throw new ScopeGateError('VALIDATION_FAILED', `subject.type '${ev.subject.type.slice(0, 40)}' is not supported: use user or actor (agent, device, service).`, [{ path: 'body.subject.type', message: 'user or actor' }]);
  }
  const scopeId = ev.resource.properties?.scopeId;
  if (typeof scopeId !== 'string' || scopeId.length === 0 || scopeId.length > 120) {
    throw new ScopeGateError('VALIDATION_FAILED', 'resource.properties.scopeId (the scope the decision is made at) is required.', [{ path: 'body.resource.properties.scopeId', message: 'required' }]);
  }
  const ctx = ev.context ?? {};
  const topic = ctx.topic;
  if (topic !== undefined && (typeof topic !== 'string' || topic.length === 0 || topic.length > 1024)) {
    throw new ScopeGateError('VALIDATION_FAILED', 'context.topic must be a topic name.', [{ path: 'body.context.topic', message: 'string' }]);
  }
  const onBehalfOf = principalOf(ctx.onBehalfOf);
  return {
    actor: { subjectId: resolveSubject(model, ev.subject.id, subjectType, scopeId), subjectType },
    scopeId,
    action: ev.action.name,
    resource: typeof topic === 'string' ? { resourceType: 'topic', resourceId: topic } : { resourceType: ev.resource.type, resourceId: ev.resource.id },
    ...(onBehalfOf ? { onBehalfOf: { subjectId: resolveSubject(model, onBehalfOf, null, scopeId) } } : {}),
  };
}

function principalOf(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  const id = typeof value === 'string' ? value : typeof value === 'object' ? ((value as { subjectId?: unknown; id?: unknown }).subjectId ?? (value as { id?: unknown }).id) : undefined;
  if (typeof id !== 'string' || id.length === 0 || id.length > 320) {
    throw new ScopeGateError('VALIDATION_FAILED', 'context.onBehalfOf must be a subject id or { subjectId }.', [{ path: 'body.context.onBehalfOf', message: 'subject id' }]);
  }
  return id;
}

/**
 * A subjectId as given, or the subject of a user/actor id, or a user's email address; unknown ids stay as they
 * are. Users are per tenant: an address names the user of the target scope's tenant, else a root's global user.
 */
function resolveSubject(model: PolicyModel, id: string, type: 'user' | 'actor' | null, scopeId: string): string {
  if (model.subject(id)) return id;
  const tenantId = model.get('scope', scopeId)?.tenantId ?? '';
  const byEmail = () => model.byUniqueKey(uniqueKey('user.email', tenantId, id.toLowerCase())) ?? model.byUniqueKey(uniqueKey('user.email', '', id.toLowerCase()));
  const user = type !== 'actor' ? (model.get('user', id) ?? byEmail()) : undefined;
  if (user?.kind === 'user') return user.subjectId;
  const actor = type !== 'user' ? model.get('actor', id) : undefined;
  return actor ? actor.subjectId : id;
}

function toAuthzenDecision(d: Decision & { revision: number }): AuthzenDecision {
  const context: Record<string, unknown> = {};
  if (d.decision === 'DENIED' && d.reason) context.reason_admin = { en: d.reason };
  if (d.delegation) context.delegation = { agent: d.delegation.agent.decision === 'ALLOWED', principal: d.delegation.principal ? d.delegation.principal.decision === 'ALLOWED' : null };
  return Object.keys(context).length > 0 ? { decision: d.decision === 'ALLOWED', context } : { decision: d.decision === 'ALLOWED' };
}
