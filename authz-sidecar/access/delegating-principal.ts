import { ScopeGateError } from '../../shared/errors.ts';
import { verifyActorToken } from '../credentials/signing-keys.ts';
import { kidOf, type ExternalTokenVerifier } from '../credentials/trusted-issuer.ts';
import type { PolicyModel } from '../model/policy-model.ts';
import { uniqueKey } from '../model/policy-model.ts';
import type { ActorRecord, UserRecord } from '../model/records.ts';

/**
 * A principal managing its own delegation grants (issue 14: "an admin, or the principal through the API").
 * It proves who it is with a credential it already holds, never with a new secret of ours:
 *
 * - an actor: its own ScopeGate JWT (not a delegated one);
 * - a user: a JWT of the configured trusted identity provider (`TRUSTED_JWT_ISSUER`, the same one users log in
 *   with over MQTT) whose `sub` is the user's `kindeId` (SPEC §2: "an external identity provider's id"). The
 *   user is looked up in the organization of the URL: that tenant's own user record, or a root's global user
 *   with a membership in it. So a user is only ever found inside one tenant, and nothing crosses tenants.
 */
export type DelegatingPrincipal = { kind: 'actor'; subjectId: string; tenantId: string; record: ActorRecord } | { kind: 'user'; subjectId: string; tenantId: string; record: UserRecord };

export interface DelegatingPrincipalDeps {
  model: PolicyModel;
  tokenIssuer: string;
  /** The trusted identity provider's verifier; null when none is configured (users then cannot self-serve). */
  verifyUserToken: ExternalTokenVerifier | null;
  now: Date;
}

/**
 * Who the bearer is as a delegating principal, for the organization `orgId`; null when the bearer is not
 * such a credential at all (the admin token, an API key, garbage), so the admin check decides (401 if nothing
 * fits). Throws when the credential is genuine but may not manage grants here.
 */
export async function authenticateDelegatingPrincipal(deps: DelegatingPrincipalDeps, header: string | undefined, orgId: string): Promise<DelegatingPrincipal | null> {
  const m = /^Bearer\s+(\S{1,8192})\s*$/i.exec(header ?? '');
  const token = m?.[1] ?? '';
  if (token.split('.').length !== 3) return null;
  const kid = kidOf(token);
  const ours = kid !== undefined && deps.model.get('signingKey', kid) !== undefined;
  if (ours) {
    const actor = await actorPrincipal(deps, token);
    // An actor of another tenant learns nothing here, not even whether the URL's agent exists.
    if (actor && actor.tenantId !== orgId) throw new ScopeGateError('FORBIDDEN', 'This actor belongs to another organization.', [{ message: 'outside the actor tenant' }]);
    return actor;
  }
  if (!deps.verifyUserToken) return null;
  const check = await deps.verifyUserToken(token, deps.now);
  if (!check.ok) return null;
  const user = userOfTenant(deps.model, check.sub, orgId);
  if (!user) throw new ScopeGateError('FORBIDDEN', 'Your identity is not a user of this organization.', [{ message: 'no user with this identity in the organization' }]);
  return { kind: 'user', subjectId: user.subjectId, tenantId: orgId, record: user };
}

async function actorPrincipal(deps: DelegatingPrincipalDeps, token: string): Promise<DelegatingPrincipal | null> {
  const check = await verifyActorToken(deps.model, deps.tokenIssuer, token, deps.now);
  if (!check.ok) return null;
  if ((check.payload as { act?: unknown }).act !== undefined) throw new ScopeGateError('FORBIDDEN', 'A delegated token cannot manage delegation grants.');
  const actor = deps.model.get('actor', check.payload.sub);
  if (!actor || actor.disabled) throw new ScopeGateError('UNAUTHENTICATED', 'The token names no enabled actor.');
  return { kind: 'actor', subjectId: actor.subjectId, tenantId: actor.tenantId, record: actor };
}

/** The tenant's own user with this identity-provider id, else a global user with a membership in the tenant. */
function userOfTenant(model: PolicyModel, kindeId: string, tenantId: string): UserRecord | undefined {
  for (const owner of [tenantId, '']) {
    const r = model.byUniqueKey(uniqueKey('user.kindeId', owner, kindeId));
    if (r?.kind !== 'user') continue;
    if (owner === '' && !model.membershipsOf(r.subjectId).some((ms) => ms.tenantId === tenantId)) continue;
    return r;
  }
  return undefined;
}

/** Is `subjectIdOrId` the caller itself (its subjectId, or its actor/user id)? */
export function isSelf(principal: DelegatingPrincipal, subjectIdOrId: string): boolean {
  return subjectIdOrId === principal.subjectId || subjectIdOrId === principal.record.id;
}

/**
 * What a principal may delegate to, on top of createDelegation's rules (same tenant, not itself): only an
 * actor of kind `agent`; and a user only to an agent of a project where it holds a membership, at the project,
 * above it (workspace, tenant) or inside it (an access scope). The delegated session is still the intersection.
 */
export function assertMayDelegateTo(model: PolicyModel, principal: DelegatingPrincipal, agent: ActorRecord): void {
  if (agent.actorKind !== 'agent') {
    throw new ScopeGateError('RULE_VIOLATION', `Only an agent can act on behalf of a principal; this actor is a ${agent.actorKind}.`, [{ path: 'actorId', message: 'not an agent' }]);
  }
  if (principal.kind !== 'user') return;
  const projectScopeId = model.get('project', agent.projectId)?.scopeId;
  const inProject = (scopeId: string) => projectScopeId !== undefined && model.ancestry(scopeId).some((s) => s.id === projectScopeId);
  const aboveProject = new Set(projectScopeId ? model.ancestry(projectScopeId).map((s) => s.id) : []);
  const member = model.membershipsOf(principal.subjectId).some((ms) => ms.tenantId === agent.tenantId && (aboveProject.has(ms.scopeId) || inProject(ms.scopeId)));
  if (!member) {
    throw new ScopeGateError('FORBIDDEN', "You hold no membership in this agent's project (or above it), so you cannot delegate to it.", [{ path: 'actorId', message: 'no membership of the caller in this project' }]);
  }
}
