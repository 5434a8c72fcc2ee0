import type { PolicyModel } from '../model/policy-model.ts';
import type { ActorRecord, DelegationRecord } from '../model/records.ts';
import { evaluate, type Decision, type EvaluateRequest, type SubjectType } from './evaluate.ts';

/**
 * On-behalf-of delegation (RFC 8693 `act`): an agent actor acting for a principal (a user, or another actor of
 * its tenant). Pure functions over the model; the clock is passed in.
 *
 * Effective permissions are the intersection of the agent's and the principal's: a request is ALLOWED only if
 * a delegation grant is in force and both would be allowed on their own; an MQTT topic filter only where both
 * sides' filters overlap.
 */

/** The delegation grant in force for (agent, principal) at `nowMs`, the one lasting longest; null if none. */
export function activeDelegation(model: PolicyModel, actorId: string, principalSubjectId: string, nowMs: number): DelegationRecord | null {
  let best: DelegationRecord | null = null;
  for (const d of model.referrersOf(actorId, 'delegation')) {
    if (d.principalSubjectId !== principalSubjectId || Date.parse(d.expiresAt) <= nowMs) continue;
    if (!best || d.expiresAt > best.expiresAt) best = d;
  }
  if (!best) return null;
  const agent = model.get('actor', actorId);
  return agent && principalOfTenant(model, principalSubjectId, agent.tenantId) ? best : null;
}

/**
 * May this subject be a principal of an agent of `tenantId`? An enabled actor of the tenant, or a user of the
 * tenant (users are per tenant), or a root's global user with a membership in it. Delegation never crosses a tenant.
 */
export function principalOfTenant(model: PolicyModel, subjectId: string, tenantId: string): boolean {
  const subject = model.subject(subjectId);
  if (!subject) return false;
  if (subject.kind === 'actor') return subject.tenantId === tenantId && !subject.disabled;
  return subject.tenantId === tenantId || model.membershipsOf(subject.subjectId).some((m) => m.tenantId === tenantId);
}

export function subjectTypeOf(model: PolicyModel, subjectId: string): SubjectType | null {
  const s = model.subject(subjectId);
  return s ? (s.kind === 'user' ? 'user' : 'actor') : null;
}

/**
 * evaluate() for an agent acting on behalf of `principalSubjectId`: the agent's own decision, the principal's
 * decision at the same target, and the delegation grant; ALLOWED only if all three hold. The answer's grant,
 * path and trace are the agent's; `delegation` carries both sides.
 */
export function evaluateOnBehalfOf(model: PolicyModel, req: EvaluateRequest, principalSubjectId: string, explain: boolean, nowMs: number): Decision {
  const agentDecision = evaluate(model, req, explain);
  const agentActor = req.subjectType === 'actor' ? agentOf(model, req.subjectId) : undefined;
  const delegation = agentActor ? activeDelegation(model, agentActor.id, principalSubjectId, nowMs) : null;
  const principalType = subjectTypeOf(model, principalSubjectId);
  const principalDecision = principalType ? evaluate(model, { ...req, subjectId: principalSubjectId, subjectType: principalType }, explain) : null;
  const both = { delegationId: delegation?.id ?? null, agent: agentDecision, principal: principalDecision };
  const base = { path: agentDecision.path, ...(agentDecision.trace ? { trace: agentDecision.trace } : {}), delegation: both };
  if (!delegation || !principalDecision) return { decision: 'DENIED', reason: 'no_delegation', ...base };
  if (agentDecision.decision === 'DENIED') return { decision: 'DENIED', ...(agentDecision.reason ? { reason: agentDecision.reason } : {}), ...base };
  if (principalDecision.decision === 'DENIED') return { decision: 'DENIED', ...(principalDecision.reason ? { reason: principalDecision.reason } : {}), ...base };
  return { decision: 'ALLOWED', ...(agentDecision.grant ? { grant: agentDecision.grant } : {}), ...base };
}

/** The actor record behind an actor subject id (or an actor id). */
export function agentOf(model: PolicyModel, subjectOrActorId: string): ActorRecord | undefined {
  const direct = model.get('actor', subjectOrActorId);
  if (direct) return direct;
  const s = model.subject(subjectOrActorId);
  return s?.kind === 'actor' ? s : undefined;
}
