import type { PolicyModel } from '../model/policy-model.ts';
import type {
  MembershipRecord,
  PermissionRecord,
  RoleRecord,
  ScopeRecord,
} from '../model/records.ts';
import { constraintRefuses, resolveConstraint, widerConstraint, type ResolvedConstraint } from '../../shared/limits.ts';
import { effectiveLimitsAt } from './limits.ts';
import { patternFits, wildcardFits } from './match.ts';

/**
 * The decision engine: pure functions over the in-memory model, no I/O.
 *
 * Steps, as SPEC §3 states them: resolvePath (target scope up to the nearest `define` boundary) →
 * candidateGrants (memberships of the subject on the path → their roles visible on the path → those roles'
 * permissions visible on the path) → fits (action, resourceType, resourcePattern) → overrides (nearest to the
 * target wins) → decide.
 */

export type SubjectType = 'user' | 'actor';

export interface EvaluateRequest {
  subjectId: string;
  subjectType: SubjectType;
  scopeId: string;
  action: string;
  resourceType: string;
  resourceId?: string | undefined;
  /** What an MQTT publish/subscribe carries: decided against permission fields and the tree's limits. */
  context?: { qos?: number | undefined; retain?: boolean | undefined; payloadBytes?: number | undefined } | undefined;
}

export interface Grant {
  membershipId: string;
  membershipScopeId: string;
  roleId: string;
  roleName: string;
  permissionId: string;
  permissionKey: string;
  permissionScopeId: string;
}

export type TraceReason =
  | 'applies'
  | 'not_on_path'
  | 'other_tenant'
  | 'beyond_boundary'
  | 'role_not_visible'
  | 'permission_not_visible'
  | 'no_roles'
  | 'no_permissions'
  | 'action_mismatch'
  | 'resource_type_mismatch'
  | 'pattern_mismatch'
  | 'override_disabled'
  | 'permission_field';

export interface TraceStep {
  membershipId: string;
  membershipScopeId: string;
  roleId?: string;
  permissionId?: string;
  permissionKey?: string;
  result: 'applies' | 'skipped';
  reason: TraceReason;
  /** The scope whose override decided (disabled, or a nearer `enabled` that re-enabled). */
  overrideScopeId?: string;
  overrideId?: string;
  /** reason `permission_field`: which field of the permission refused the request's context. */
  field?: 'permission.maxQos' | 'permission.retain' | 'permission.maxPayloadBytes';
}

export type DenyReason =
  | 'unknown_subject'
  | 'subject_disabled'
  | 'no_membership'
  | 'no_matching_permission'
  | 'override_disabled'
  | 'limit_exceeded'
  /** onBehalfOf without a delegation grant in force for this agent and principal. */
  | 'no_delegation';

export interface Decision {
  decision: 'ALLOWED' | 'DENIED';
  grant?: Grant;
  reason?: DenyReason;
  /** The scopes walked, target first, ending at the boundary. */
  path: string[];
  trace?: TraceStep[];
  /** reason `limit_exceeded`: the limit of the scope tree that refused, its value and the scope that set it. */
  limit?: { name: 'maxPayloadBytes'; value: number; scopeId: string };
  /** Set when the request was made on behalf of a principal: both sides' decisions (see engine/delegation.ts). */
  delegation?: { delegationId: string | null; agent: Decision; principal: Decision | null };
  /** Trace steps left out because the trace reached its bound (the decision itself is unaffected). */
  traceOmitted?: number;
}

/** The target scope, its ancestors, up to and including the nearest `define` scope (always the tenant). */
export function resolvePath(model: PolicyModel, scopeId: string): ScopeRecord[] {
  const path: ScopeRecord[] = [];
  for (const scope of model.ancestry(scopeId)) {
    path.push(scope);
    if (scope.parentId === null || permissionModeOf(model, scope) === 'define') break;
  }
  return path;
}

export function permissionModeOf(model: PolicyModel, scope: ScopeRecord): 'define' | 'merge' {
  return model.get('scopeType', scope.typeId)?.config.permissionMode ?? 'define';
}

export interface Candidate {
  membership: MembershipRecord;
  role: RoleRecord;
  permission: PermissionRecord;
  /** Index on the path of the scope that defines the permission. */
  permissionDepth: number;
}

export interface PathIndex {
  path: ScopeRecord[];
  ids: readonly string[];
  depth: Map<string, number>;
}

function indexPath(path: ScopeRecord[]): PathIndex {
  const depth = new Map<string, number>();
  path.forEach((s, i) => depth.set(s.id, i));
  return { path, ids: path.map((s) => s.id), depth };
}

/** The target's path, indexed; depends on the scope tree only, so the model keeps it until the tree changes. */
function pathIndexOf(model: PolicyModel, scopeId: string): PathIndex {
  return model.memoTree(`path\u0000${scopeId}`, () => indexPath(resolvePath(model, scopeId)));
}

/**
 * Every (membership, role, permission) the subject holds that is visible at the target; `onSkip` hears why the
 * others are not (used by explain).
 */
function* candidateGrants(
  model: PolicyModel,
  subjectId: string,
  at: PathIndex,
  onSkip?: (step: TraceStep) => void,
): Generator<Candidate> {
  const tenantId = at.path[0]?.tenantId;
  for (const membership of model.membershipsOf(subjectId)) {
    const base = { membershipId: membership.id, membershipScopeId: membership.scopeId };
    if (!at.depth.has(membership.scopeId)) {
      if (onSkip) {
        const reason: TraceReason =
          membership.tenantId !== tenantId
            ? 'other_tenant'
            : model.ancestry(at.path[0]!.id).some((s) => s.id === membership.scopeId)
              ? 'beyond_boundary'
              : 'not_on_path';
        onSkip({ ...base, result: 'skipped', reason });
      }
      continue;
    }
    const assignments = model.referrersOf(membership.id, 'roleAssignment');
    if (assignments.length === 0) onSkip?.({ ...base, result: 'skipped', reason: 'no_roles' });
    for (const assignment of assignments) {
      const role = model.get('role', assignment.roleId);
      if (!role) continue;
      if (!at.depth.has(role.scopeId)) {
        onSkip?.({ ...base, roleId: role.id, result: 'skipped', reason: 'role_not_visible' });
        continue;
      }
      const links = model.referrersOf(role.id, 'rolePermission');
      if (links.length === 0) onSkip?.({ ...base, roleId: role.id, result: 'skipped', reason: 'no_permissions' });
      for (const link of links) {
        const permission = model.get('permission', link.permissionId);
        if (!permission) continue;
        const permissionDepth = at.depth.get(permission.scopeId);
        if (permissionDepth === undefined) {
          onSkip?.({
            ...base,
            roleId: role.id,
            permissionId: permission.id,
            permissionKey: permission.key,
            result: 'skipped',
            reason: 'permission_not_visible',
          });
          continue;
        }
        yield { membership, role, permission, permissionDepth };
      }
    }
  }
}

/**
 * The override that decides whether `role` may use `permission` at the target: the nearest one to the
 * target, from the target up to the scope that defines the permission. At one scope, an override of the
 * role's use of the permission is more specific than one of the permission and wins.
 */
export function decidingOverride(model: PolicyModel, at: PathIndex, c: Pick<Candidate, 'role' | 'permission' | 'permissionDepth'>) {
  for (let i = 0; i <= c.permissionDepth; i++) {
    const scope = at.path[i]!;
    const o =
      model.rolePermissionOverrideAt(scope.id, c.role.id, c.permission.id) ??
      model.permissionOverrideAt(scope.id, c.permission.id);
    if (o) return o;
  }
  return undefined;
}

/** `maxTraceSteps` bounds the explain trace (an answer's size): later steps are counted in `traceOmitted`. */
export function evaluate(model: PolicyModel, req: EvaluateRequest, explain = false, maxTraceSteps = Infinity): Decision {
  const at = pathIndexOf(model, req.scopeId);
  const path = [...at.ids];
  const trace: TraceStep[] | undefined = explain ? [] : undefined;
  let omitted = 0;
  const record = (step: TraceStep) => {
    if (trace!.length < maxTraceSteps) trace!.push(step);
    else omitted++;
  };

  const subject = model.subject(req.subjectId);
  if (!subject || subject.kind !== req.subjectType) {
    return { decision: 'DENIED', reason: 'unknown_subject', path, ...(trace ? { trace } : {}) };
  }
  if (subject.kind === 'actor' && subject.disabled) {
    return { decision: 'DENIED', reason: 'subject_disabled', path, ...(trace ? { trace } : {}) };
  }

  const limit = limitRefusing(model, req);
  if (limit) return { decision: 'DENIED', reason: 'limit_exceeded', limit, path, ...(trace ? { trace } : {}) };

  let sawMembership = false;
  let sawOverride = false;
  let allowed: Grant | undefined;
  const onSkip = trace ? record : undefined;

  for (const c of candidateGrants(model, req.subjectId, at, onSkip)) {
    sawMembership = true;
    const step: TraceStep = {
      membershipId: c.membership.id,
      membershipScopeId: c.membership.scopeId,
      roleId: c.role.id,
      permissionId: c.permission.id,
      permissionKey: c.permission.key,
      result: 'skipped',
      reason: 'applies',
    };
    if (!wildcardFits(c.permission.action, req.action)) step.reason = 'action_mismatch';
    else if (!wildcardFits(c.permission.resourceType, req.resourceType)) step.reason = 'resource_type_mismatch';
    else if (!patternFits(c.permission.resourcePattern, req.resourceType, req.resourceId)) step.reason = 'pattern_mismatch';
    else if (fieldRefusing(c.permission, req)) {
      step.reason = 'permission_field';
      step.field = fieldRefusing(c.permission, req)!;
    } else {
      const o = decidingOverride(model, at, c);
      if (o) {
        step.overrideScopeId = o.childScopeId;
        step.overrideId = o.id;
      }
      if (o?.state === 'disabled') {
        step.reason = 'override_disabled';
        sawOverride = true;
      } else {
        step.result = 'applies';
        allowed ??= {
          membershipId: c.membership.id,
          membershipScopeId: c.membership.scopeId,
          roleId: c.role.id,
          roleName: c.role.name,
          permissionId: c.permission.id,
          permissionKey: c.permission.key,
          permissionScopeId: c.permission.scopeId,
        };
        if (!trace) break;
      }
    }
    if (trace) record(step);
  }
  if (!sawMembership) sawMembership = model.membershipsOf(req.subjectId).some((m) => at.depth.has(m.scopeId));

  const explained = trace ? { trace, ...(omitted > 0 ? { traceOmitted: omitted } : {}) } : {};
  if (allowed) return { decision: 'ALLOWED', grant: allowed, path, ...explained };
  // A permission that fits but whose fields (maxQos, retain, maxPayloadBytes) refuse the request's context is
  // no matching permission; the trace names the field.
  const reason: DenyReason = sawOverride ? 'override_disabled' : sawMembership ? 'no_matching_permission' : 'no_membership';
  return { decision: 'DENIED', reason, path, ...explained };
}

/** A topic permission's field that refuses the request's MQTT context (qos, retain, payload size), if any. */
function fieldRefusing(p: PermissionRecord, req: EvaluateRequest): TraceStep['field'] | null {
  if (!req.context || req.resourceType !== 'topic') return null;
  const c = constraintOf(p);
  if (req.action === 'subscribe') return (req.context.qos ?? 0) > c.maxQos ? 'permission.maxQos' : null;
  return constraintRefuses(c, { qos: req.context.qos ?? 0, retain: req.context.retain ?? false, payloadBytes: req.context.payloadBytes ?? 0 });
}

/** The tree's limits that a single request can exceed: the payload size of a publish at the target scope. */
function limitRefusing(model: PolicyModel, req: EvaluateRequest): Decision['limit'] | undefined {
  const bytes = req.context?.payloadBytes;
  if (bytes === undefined || req.action !== 'publish') return undefined;
  const max = effectiveLimitsAt(model, req.scopeId).sources.maxPayloadBytes;
  return max && bytes > max.value ? { name: 'maxPayloadBytes', value: max.value, scopeId: max.scopeId } : undefined;
}

/**
 * The resource patterns a subject may use for `action` on resourceType `topic` at a scope, after overrides:
 * what the broker needs to decide publishes and subscriptions of an `rbac` app in memory. A publish of topic T
 * is allowed iff some pattern matches T; exactly what `evaluate` answers for that request.
 */
export function allowedTopicPatterns(model: PolicyModel, subjectId: string, scopeId: string, action: string): string[] {
  return [...allowedTopicRules(model, subjectId, scopeId, action).keys()];
}

/**
 * The same patterns, each with the permission fields (maxQos, retain, maxPayloadBytes) it carries: when two
 * permissions allow the same pattern the more permissive fields win (permissions add up, as grants do).
 *
 * What a subject may do depends only on the roles it holds that are visible at the scope (through memberships
 * on the path), not on which membership brings them: the rules are computed per role set and shared (until
 * the next change) by every subject holding the same roles there, e.g. the actors of one access scope. The
 * returned map is shared: read it, never change it.
 */
export function allowedTopicRules(model: PolicyModel, subjectId: string, scopeId: string, action: string): ReadonlyMap<string, ResolvedConstraint> {
  return topicRulesOfRoles(model, visibleRolesAt(model, subjectId, scopeId), action);
}

const NO_RULES: ReadonlyMap<string, ResolvedConstraint> = new Map();

/** The roles a subject holds that are visible at a scope (see `visibleRoles`), with the scope's path. */
export interface VisibleRoles {
  readonly scopeId: string;
  readonly at: PathIndex;
  readonly roles: readonly RoleRecord[];
}

/**
 * The roles a subject holds that are visible at a scope: what its topic rules depend on. A session grant
 * asks for the rules of both actions and of every `rbac` app from one of these, walking the subject's
 * memberships once (that walk was most of the sidecar's cost of re-deciding a session).
 */
export function visibleRolesAt(model: PolicyModel, subjectId: string, scopeId: string): VisibleRoles | null {
  const subject = model.subject(subjectId);
  if (!subject || (subject.kind === 'actor' && subject.disabled)) return null;
  const at = pathIndexOf(model, scopeId);
  return { scopeId, at, roles: visibleRoles(model, subjectId, at) };
}

/** The topic rules (pattern → permission fields) that roles visible at a scope allow for `action`; shared, read-only. */
export function topicRulesOfRoles(model: PolicyModel, visible: VisibleRoles | null, action: string): ReadonlyMap<string, ResolvedConstraint> {
  if (!visible || visible.roles.length === 0) return NO_RULES;
  const { roles, at, scopeId } = visible;
  return model.memoPolicy(`topicRules\u0000${scopeId}\u0000${action}\u0000${roles.map((r) => r.id).join('\u0000')}`, () => topicRulesOf(model, roles, at, action));
}

/**
 * The roles a subject holds that are visible at the target: through a membership on the path, defined on the
 * path. In the order `candidateGrants` meets them, each once.
 */
function visibleRoles(model: PolicyModel, subjectId: string, at: PathIndex): RoleRecord[] {
  const out: RoleRecord[] = [];
  for (const membership of model.eachReferrer(subjectId, 'membership')) {
    if (!at.depth.has(membership.scopeId)) continue;
    for (const assignment of model.eachReferrer(membership.id, 'roleAssignment')) {
      const role = model.get('role', assignment.roleId);
      if (role && at.depth.has(role.scopeId) && !out.includes(role)) out.push(role);
    }
  }
  return out;
}

/** The topic rules a set of roles allows at the target for `action`, after overrides. */
function topicRulesOf(model: PolicyModel, roles: readonly RoleRecord[], at: PathIndex, action: string): Map<string, ResolvedConstraint> {
  const out = new Map<string, ResolvedConstraint>();
  for (const role of roles) {
    for (const link of model.referrersOf(role.id, 'rolePermission')) {
      const permission = model.get('permission', link.permissionId);
      if (!permission) continue;
      const permissionDepth = at.depth.get(permission.scopeId);
      if (permissionDepth === undefined) continue;
      if (!wildcardFits(permission.action, action) || !wildcardFits(permission.resourceType, 'topic')) continue;
      if (decidingOverride(model, at, { role, permission, permissionDepth })?.state === 'disabled') continue;
      const pattern = permission.resourcePattern === '*' ? '#' : permission.resourcePattern;
      const constraint = constraintOf(permission);
      const seen = out.get(pattern);
      out.set(pattern, seen ? widerConstraint(seen, constraint) : constraint);
    }
  }
  return out;
}

/** A permission's topic fields, resolved (absent = not constrained). */
export function constraintOf(p: PermissionRecord): ResolvedConstraint {
  return resolveConstraint({ maxQos: p.maxQos ?? null, retain: p.retain ?? null, maxPayloadBytes: p.maxPayloadBytes ?? null });
}
