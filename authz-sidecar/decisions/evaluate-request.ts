import { z } from 'zod';
import { ScopeGateError } from '../../shared/errors.ts';
import { assertCovers, type Principal } from '../access/principal.ts';
import { evaluateOnBehalfOf } from '../engine/delegation.ts';
import { evaluate, type Decision } from '../engine/evaluate.ts';
import type { PolicyModel } from '../model/policy-model.ts';
import type { PolicyReplica } from '../model/replica.ts';

/** One evaluate request as the API receives it (POST /v1/evaluate, and each entry of /v1/evaluate/batch). */
export const evaluateRequestSchema = z.strictObject({
  actor: z.strictObject({ subjectId: z.string().min(1).max(120), subjectType: z.enum(['user', 'actor']) }),
  scopeId: z.string().min(1).max(120),
  action: z.string().min(1).max(64),
  resource: z.strictObject({
    resourceType: z.string().min(1).max(64),
    resourceId: z.string().min(1).max(1024).optional(),
  }),
  /** MQTT facts of a publish/subscribe, decided against permission fields and the tree's limits. */
  context: z
    .strictObject({
      qos: z.union([z.literal(0), z.literal(1), z.literal(2)]).optional(),
      retain: z.boolean().optional(),
      payloadBytes: z.number().int().min(0).max(2 ** 32).optional(),
    })
    .optional(),
  consistency: z.strictObject({ atLeastAsFresh: z.number().int().min(0) }).optional(),
  /** The actor (an agent) acts for this principal: ALLOWED only with a delegation grant and both sides allowed. */
  onBehalfOf: z.strictObject({ subjectId: z.string().min(1).max(120) }).optional(),
});
export type EvaluateRequest = z.infer<typeof evaluateRequestSchema>;

/** How long evaluate waits for this replica to reach a requested `atLeastAsFresh` revision. */
const FRESHNESS_WAIT_MS = 2_000;

/**
 * Bounds of the work and the answer one request may ask for (issue 11.9: a role of 1,000 permissions made an
 * explained batch of 1,000 requests answer 237 MiB). A batch holds at most 1,000 requests, 100 with explain;
 * a trace at most 1,000 steps, an explained batch 10,000 steps in all; steps beyond are counted in
 * `traceOmitted`. The decisions themselves are never cut.
 */
export const EVALUATE_BATCH_MAX = 1_000;
export const EXPLAIN_BATCH_MAX = 100;
export const TRACE_STEPS_PER_DECISION = 1_000;
export const TRACE_STEPS_PER_RESPONSE = 10_000;

/**
 * One decision as the API answers it, in named steps:
 * `scopeMustExist → principalMustCoverScope → subjectMustBeOfKeyTenant → evaluate → hideOtherTenantsTrace`.
 */
export function decideEvaluateRequest(
  model: PolicyModel,
  input: EvaluateRequest,
  explain: boolean,
  principal: Principal,
  nowMs = Date.now(),
  maxTraceSteps = TRACE_STEPS_PER_DECISION,
): Decision & { revision: number } {
  scopeMustExist(model, input.scopeId);
  assertCovers(model, principal, input.scopeId);
  if (principal.kind === 'apiKey') subjectMustBeOfKeyTenant(model, input.actor.subjectId, principal.tenantId);
  if (principal.kind === 'apiKey' && input.onBehalfOf) subjectMustBeOfKeyTenant(model, input.onBehalfOf.subjectId, principal.tenantId, 'body.onBehalfOf.subjectId');
  const request = {
    subjectId: input.actor.subjectId,
    subjectType: input.actor.subjectType,
    scopeId: input.scopeId,
    action: input.action,
    resourceType: input.resource.resourceType,
    resourceId: input.resource.resourceId,
    context: input.context,
  };
  const decision = input.onBehalfOf ? evaluateOnBehalfOf(model, request, input.onBehalfOf.subjectId, explain, nowMs) : evaluate(model, request, explain, maxTraceSteps);
  boundTrace(decision, maxTraceSteps);
  if (decision.delegation) {
    boundTrace(decision.delegation.agent, maxTraceSteps);
    if (decision.delegation.principal) boundTrace(decision.delegation.principal, maxTraceSteps);
  }
  if (principal.kind === 'apiKey') {
    hideOtherTenantsTrace(model, decision, principal.tenantId);
    if (decision.delegation) {
      hideOtherTenantsTrace(model, decision.delegation.agent, principal.tenantId);
      if (decision.delegation.principal) hideOtherTenantsTrace(model, decision.delegation.principal, principal.tenantId);
    }
  }
  if (!explain && decision.delegation) {
    // Without explain, both sides are summed up by their outcome only.
    const side = (d: Decision | null) => (d ? { decision: d.decision, ...(d.reason ? { reason: d.reason } : {}) } : null);
    decision.delegation = { delegationId: decision.delegation.delegationId, agent: side(decision.delegation.agent) as Decision, principal: side(decision.delegation.principal) as Decision | null };
  }
  return { ...decision, revision: model.seq };
}

/** Cuts a trace to `max` steps (the engine already stops recording there; a delegation's sides are cut here). */
function boundTrace(decision: Decision, max: number): void {
  if (!decision.trace || decision.trace.length <= max) return;
  decision.traceOmitted = (decision.traceOmitted ?? 0) + decision.trace.length - max;
  decision.trace = decision.trace.slice(0, max);
}

function scopeMustExist(model: PolicyModel, scopeId: string): void {
  if (!model.get('scope', scopeId)) {
    throw new ScopeGateError('NOT_FOUND', `scope '${scopeId.slice(0, 80)}' does not exist.`, [{ path: 'body.scopeId', message: 'no such scope' }]);
  }
}

/**
 * An API key may only ask about subjects of its own tenant (SPEC §3: it cannot read another tenant): an actor
 * of the tenant, or a user of the tenant, or a global user (root's) with a membership in it. Unknown subjects are
 * left to the engine (DENIED unknown_subject).
 */
function subjectMustBeOfKeyTenant(model: PolicyModel, subjectId: string, tenantId: string, path = 'body.actor.subjectId'): void {
  const subject = model.subject(subjectId);
  if (!subject) return;
  const ofTenant =
    subject.kind === 'actor'
      ? subject.tenantId === tenantId
      : subject.tenantId === tenantId || model.membershipsOf(subject.subjectId).some((m) => m.tenantId === tenantId);
  if (!ofTenant) throw new ScopeGateError('FORBIDDEN', 'This API key may not ask about subjects of another tenant.', [{ path, message: 'outside key tenant' }]);
}

/** A key never sees another tenant's memberships, not even as skipped steps of a trace. */
function hideOtherTenantsTrace(model: PolicyModel, decision: Decision, tenantId: string): void {
  if (decision.trace) decision.trace = decision.trace.filter((step) => model.get('membership', step.membershipId)?.tenantId === tenantId);
}

/** Waits (bounded) until this replica has reached `revision`; NOT_FRESH_ENOUGH otherwise. */
export async function awaitFreshness(replica: PolicyReplica, revision: number | undefined): Promise<void> {
  if (revision === undefined || replica.seq >= revision) return;
  if (!(await replica.waitFor(revision, FRESHNESS_WAIT_MS))) {
    throw new ScopeGateError('NOT_FRESH_ENOUGH', `This replica is at revision ${replica.seq}, not yet ${revision}.`, [
      { message: 'replica behind', revision: replica.seq, requested: revision },
    ]);
  }
}
