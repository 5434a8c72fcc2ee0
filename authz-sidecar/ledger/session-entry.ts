import type { LedgerSession } from '../../shared/broker-wire.ts';
import { maxSessionsAlong } from '../engine/limits.ts';
import type { PolicyModel } from '../model/policy-model.ts';
import type { ScopeLimit, SessionEntry } from './session-ledger.ts';

/**
 * The session-count limits that apply to a new session: one per limited scope on `entry.scopePath`. The
 * ledger's `reserve` admits the session only if each stays under its limit. This is where issue 13's
 * `maxSessions` plugs in (read the limits of the scopes on the path from the model); none by default.
 */
export type SessionLimits = (model: PolicyModel, entry: SessionEntry) => ScopeLimit[];
export const noSessionLimits: SessionLimits = () => [];

/** `limits.maxSessions` of every scope on the session's path that sets one (SPEC §7; the default). */
export const maxSessionLimits: SessionLimits = (model, entry) => maxSessionsAlong(model, entry.scopePath);

/**
 * A ledger entry for a session of `actorId`, from the model as it is now: tenant, project, access scope and
 * the scope path the session counts under (the actor's scope up to the tenant). Null when the actor or its
 * project no longer exists.
 */
export function sessionEntryFor(model: PolicyModel, brokerId: string, s: LedgerSession): SessionEntry | null {
  const actor = model.get('actor', s.actorId);
  if (!actor) return null;
  const project = model.get('project', actor.projectId);
  if (!project) return null;
  const scopePath = model.ancestry(actor.accessScopeId ?? project.scopeId).map((scope) => scope.id);
  if (scopePath.length === 0) return null;
  return {
    sessionId: s.sessionId,
    brokerId,
    clientId: s.clientId,
    actorId: actor.id,
    tenantId: actor.tenantId,
    projectId: project.id,
    accessScopeId: actor.accessScopeId,
    scopePath,
    connectedAt: s.connectedAt,
    state: s.state,
    subscriptions: s.subscriptions,
    ...(s.remoteAddress ? { remoteAddress: s.remoteAddress } : {}),
  };
}
