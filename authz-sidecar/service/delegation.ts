import { ScopeGateError } from '../../shared/errors.ts';
import { principalOfTenant } from '../engine/delegation.ts';
import type { ActorRecord, DelegationRecord } from '../model/records.ts';
import type { Tx } from './tx.ts';

/** Longest a delegation grant may last (the schema caps requests at the same value). */
export const MAX_DELEGATION_SECONDS = 30 * 24 * 3600;

/**
 * A delegation grant: `agent` may act on behalf of the principal subject until now + `seconds`. The principal
 * is a user with a membership in the agent's tenant, or another enabled actor of that tenant; never the agent
 * itself, never another tenant.
 */
export function createDelegation(tx: Tx, agent: ActorRecord, principalSubjectId: string, seconds: number, createdBy: string): DelegationRecord {
  const principal = tx.model.subject(principalSubjectId);
  if (!principal) {
    throw new ScopeGateError('INVALID_REFERENCE', `subjectId '${principalSubjectId.slice(0, 80)}' is not a user or actor subject.`, [{ path: 'body.subjectId', message: 'no such subject' }]);
  }
  if (principal.subjectId === agent.subjectId) throw new ScopeGateError('RULE_VIOLATION', 'An actor cannot act on behalf of itself.', [{ path: 'body.subjectId', message: 'same as the agent' }]);
  if (!principalOfTenant(tx.model, principal.subjectId, agent.tenantId)) {
    throw new ScopeGateError('CROSS_TENANT', "The principal is not part of the agent's tenant (a user needs a membership in it; an actor must belong to it and be enabled).", [
      { path: 'body.subjectId', message: 'outside the agent tenant' },
    ]);
  }
  const expiresAt = new Date(Date.parse(tx.now) + Math.min(seconds, MAX_DELEGATION_SECONDS) * 1000).toISOString();
  return tx.put({ kind: 'delegation', ...tx.base('delegation'), tenantId: agent.tenantId, actorId: tx.must('actor', agent.id).id, principalSubjectId: principal.subjectId, expiresAt, createdBy });
}
