import type { AppGrant, SessionGrant } from '../../shared/broker-wire.ts';
import { INTERNAL_PREFIX } from '../../shared/topic.ts';
import type { PolicyModel } from '../model/policy-model.ts';
import type { ActorRecord } from '../model/records.ts';
import { isUnconstrained, resolveConstraint, widerConstraint, type ResolvedConstraint } from '../../shared/limits.ts';
import { allowedTopicRules, resolvePath } from './evaluate.ts';
import { grantInput } from './grant-inputs.ts';
import { grantLimitsAt } from './limits.ts';

/**
 * What the broker needs to decide every publish and subscribe of an actor's session in memory, computed
 * from the model in one go: the topic view (project mount + the actor's namespace) and, per granted app,
 * the filters it may publish to and subscribe to. Pure; `null` when the actor may not connect at all.
 */
export function sessionGrantFor(model: PolicyModel, actorId: string, expiresAt: number | null): SessionGrant | null {
  const actor = model.get('actor', actorId);
  if (!actor || actor.disabled) return null;
  const project = model.get('project', actor.projectId);
  if (!project) return null;
  const namespace = namespaceOf(model, actor, project.scopeId);
  if (namespace === null) return null;
  const decisionScope = actor.accessScopeId ?? project.scopeId;
  // What this grant reads, so that only a change to one of these re-decides the session (grant-inputs.ts).
  const dependsOn = new Set([grantInput.actor(actor.id), grantInput.project(project.id)]);
  for (const scope of namespaceScopes(model, actor.accessScopeId, project.scopeId)) dependsOn.add(grantInput.scope(scope));

  const apps: AppGrant[] = [];
  let rbac = false;
  for (const grant of model.referrersOf(actor.id, 'appGrant')) {
    dependsOn.add(grantInput.app(grant.appId));
    const app = model.get('app', grant.appId);
    if (!app || app.projectId !== project.id) continue;
    if (app.mode === 'open') {
      const all = `${app.slug}/#`;
      const settings = resolveConstraint(app.settings);
      const constraints = isUnconstrained(settings) ? {} : { publishConstraints: { [all]: settings }, subscribeConstraints: { [all]: settings } };
      apps.push({ appId: app.id, slug: app.slug, mode: 'open', publish: [all], subscribe: [all], ...constraints });
      continue;
    }
    rbac = true;
    const publish = forApp(allowedTopicRules(model, actor.subjectId, decisionScope, 'publish'), app.slug);
    const subscribe = forApp(allowedTopicRules(model, actor.subjectId, decisionScope, 'subscribe'), app.slug);
    apps.push({
      appId: app.id,
      slug: app.slug,
      mode: 'rbac',
      publish: publish.filters,
      subscribe: subscribe.filters,
      ...(publish.constraints ? { publishConstraints: publish.constraints } : {}),
      ...(subscribe.constraints ? { subscribeConstraints: subscribe.constraints } : {}),
    });
  }
  apps.sort((a, b) => (a.slug < b.slug ? -1 : 1));
  if (rbac) {
    // Topic permissions: the subject's memberships, and the roles, permissions and overrides on the decision
    // path, whose extent depends on the types of the scopes walked.
    dependsOn.add(grantInput.subject(actor.subjectId));
    for (const scope of resolvePath(model, decisionScope)) dependsOn.add(grantInput.scope(scope.id)).add(grantInput.rules(scope.id)).add(grantInput.scopeType(scope.typeId));
  }

  // Limits: every scope from the decision scope up to the tenant sets its own (limits.ts).
  for (const scope of model.ancestry(decisionScope)) dependsOn.add(grantInput.limits(scope.id));

  return {
    actorId: actor.id,
    subjectId: actor.subjectId,
    tenantId: actor.tenantId,
    projectId: project.id,
    accessScopeId: actor.accessScopeId,
    mount: `${INTERNAL_PREFIX}${project.id}`,
    namespace,
    apps,
    expiresAt,
    revision: model.seq,
    dependsOn: [...dependsOn],
    limits: grantLimitsAt(model, decisionScope),
  };
}

/** Rules narrowed to one app: its filters, and the permission fields of those that carry any. */
function forApp(rules: Map<string, ResolvedConstraint>, slug: string): { filters: string[]; constraints?: Record<string, ResolvedConstraint> } {
  const narrowed = new Map<string, ResolvedConstraint>();
  for (const [pattern, constraint] of rules) {
    for (const filter of restrictToApp(pattern, slug)) {
      const seen = narrowed.get(filter);
      narrowed.set(filter, seen ? widerConstraint(seen, constraint) : constraint);
    }
  }
  let constraints: Record<string, ResolvedConstraint> | undefined;
  for (const [filter, c] of narrowed) if (!isUnconstrained(c)) (constraints ??= {})[filter] = c;
  return { filters: [...narrowed.keys()], ...(constraints ? { constraints } : {}) };
}

/**
 * A permission pattern, as the filters it contributes to one app: patterns are written in the client's view
 * (`<app>/<rest>`), so only those whose first level is the app's slug (or a wildcard) concern it, and a
 * wildcard first level is narrowed to the app.
 */
export function restrictToApp(pattern: string, slug: string): string[] {
  const [first, ...rest] = pattern.split('/');
  if (first === slug) return [pattern];
  if (first === '#') return [`${slug}/#`];
  if (first === '+') return rest.length > 0 ? [`${slug}/${rest.join('/')}`] : [];
  return [];
}

/** The scopes whose slugs and parents make the namespace: the access scope up to the project's scope. */
function namespaceScopes(model: PolicyModel, accessScopeId: string | null, projectScopeId: string): string[] {
  const out = [projectScopeId];
  if (accessScopeId === null) return out;
  for (const scope of model.ancestry(accessScopeId)) {
    if (scope.id === projectScopeId) break;
    out.push(scope.id);
  }
  return out;
}

/** Slug path of the actor's access scope below its project ('' at project level); null if not inside it. */
export function namespaceOf(model: PolicyModel, actor: ActorRecord, projectScopeId: string): string | null {
  if (actor.accessScopeId === null) return '';
  const slugs: string[] = [];
  for (const scope of model.ancestry(actor.accessScopeId)) {
    if (scope.id === projectScopeId) return slugs.reverse().join('/');
    slugs.push(scope.slug);
  }
  return null;
}
