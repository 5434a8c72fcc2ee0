import type { AppGrant, SessionGrant } from '../../shared/broker-wire.ts';
import { INTERNAL_PREFIX } from '../../shared/topic.ts';
import type { PolicyModel } from '../model/policy-model.ts';
import type { ActorRecord, AppRecord } from '../model/records.ts';
import { isUnconstrained, minBound, resolveConstraint, UNCONSTRAINED, widerConstraint, type ResolvedConstraint } from '../../shared/limits.ts';
import { intersectFilters } from '../../shared/topic.ts';
import { activeDelegation } from './delegation.ts';
import { allowedTopicRules, resolvePath, topicRulesOfRoles, visibleRolesAt, type VisibleRoles } from './evaluate.ts';
import { grantInput } from './grant-inputs.ts';
import { grantLimitsAt } from './limits.ts';

/**
 * What the broker needs to decide every publish and subscribe of an actor's session in memory, computed
 * from the model in one go: the topic view (project mount + the actor's namespace) and, per granted app,
 * the filters it may publish to and subscribe to. Pure; `null` when the actor may not connect at all.
 *
 * `delegated`: the session acts on behalf of a principal (RFC 8693 token). It needs a delegation grant in
 * force, and each app allows only where both the actor and the principal may publish / subscribe (the
 * pairwise intersection of their filters, with the narrower permission fields); the grant then depends on
 * the principal's inputs too, so a change of either side re-decides it.
 */
export function sessionGrantFor(model: PolicyModel, actorId: string, expiresAt: number | null, delegated?: Delegated): SessionGrant | null {
  const actor = model.get('actor', actorId);
  if (!actor || actor.disabled) return null;
  const project = model.get('project', actor.projectId);
  if (!project) return null;
  // Derived from the tree only: computed once per access scope until a scope changes.
  const namespace = model.memoTree(`namespace\u0000${actor.accessScopeId ?? ''}\u0000${project.scopeId}`, () => namespaceOf(model, actor, project.scopeId));
  if (namespace === null) return null;
  const decisionScope = actor.accessScopeId ?? project.scopeId;
  // What this grant reads, so that only a change to one of these re-decides the session (grant-inputs.ts):
  // the actor's own inputs here, those of its place in the tree (shared by its scope's sessions) below.
  const dependsOn = new Set([grantInput.actor(actor.id)]);
  if (delegated && !activeDelegation(model, actor.id, delegated.principalSubjectId, delegated.nowMs)) return null;

  const apps: AppGrant[] = [];
  let rbac = false;
  // The actor's roles at its decision scope, walked once for every rbac app and both actions.
  let visible: VisibleRoles | null | undefined;
  for (const grant of model.eachReferrer(actor.id, 'appGrant')) {
    dependsOn.add(grantInput.app(grant.appId));
    const app = model.get('app', grant.appId);
    if (!app || app.projectId !== project.id) continue;
    if (delegated) {
      // Both sides' topic permissions are read, whatever the app's mode: depend on both subjects' rules.
      rbac = true;
      apps.push(delegatedApp(model, actor, app, decisionScope, delegated.principalSubjectId));
      continue;
    }
    if (app.mode === 'open') {
      apps.push(openAppGrant(app));
      continue;
    }
    rbac = true;
    if (visible === undefined) visible = visibleRolesAt(model, actor.subjectId, decisionScope);
    const publish = forApp(topicRulesOfRoles(model, visible, 'publish'), app.slug);
    const subscribe = forApp(topicRulesOfRoles(model, visible, 'subscribe'), app.slug);
    apps.push(sharedRbacAppGrant(app, publish, subscribe));
  }
  apps.sort((a, b) => (a.slug < b.slug ? -1 : 1));
  if (rbac) {
    // Topic permissions: the subject's memberships (and, below, the rules of the decision path).
    dependsOn.add(grantInput.subject(actor.subjectId));
    if (delegated) {
      dependsOn.add(grantInput.subject(delegated.principalSubjectId));
      const principalActor = model.subject(delegated.principalSubjectId);
      if (principalActor?.kind === 'actor') dependsOn.add(grantInput.actor(principalActor.id));
    }
  }

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
    dependsOn: [...dependsOn, ...placeInputs(model, project, actor.accessScopeId, rbac)],
    limits: model.memoPolicy(`grantLimits\u0000${decisionScope}`, () => grantLimitsAt(model, decisionScope)),
    onBehalfOf: delegated?.principalSubjectId ?? null,
  };
}

/**
 * The inputs a grant reads from the actor's place in the tree, the same for every session of an access scope
 * (derived from the scope tree only: computed once per place until a scope or scope type changes, and shared
 * as one list of the same strings): the project;
 * the scopes that make the namespace; for topic permissions, the roles, permissions and overrides on the
 * decision path, whose extent depends on the types of the scopes walked; and the limits of every scope from
 * the decision scope up to the tenant (limits.ts).
 */
function placeInputs(model: PolicyModel, project: { id: string; scopeId: string }, accessScopeId: string | null, rbac: boolean): readonly string[] {
  return model.memoTree(`placeInputs\u0000${project.id}\u0000${accessScopeId ?? ''}\u0000${rbac ? 'rbac' : 'open'}`, () => {
    const decisionScope = accessScopeId ?? project.scopeId;
    const out = new Set([grantInput.project(project.id)]);
    for (const scope of namespaceScopes(model, accessScopeId, project.scopeId)) out.add(grantInput.scope(scope));
    if (rbac) for (const scope of resolvePath(model, decisionScope)) out.add(grantInput.scope(scope.id)).add(grantInput.rules(scope.id)).add(grantInput.scopeType(scope.typeId));
    for (const scope of model.ancestry(decisionScope)) out.add(grantInput.limits(scope.id));
    return [...out];
  });
}

/** A delegated session: the principal it acts for, and the time its delegation grant is checked at. */
export interface Delegated {
  principalSubjectId: string;
  nowMs: number;
}

type Side = { filters: string[]; constraints?: Record<string, ResolvedConstraint> };

/** What a subject may do in one app, in the actor's view: an open app's all, or its topic permissions. */
function sideOf(model: PolicyModel, subjectId: string, app: AppRecord, decisionScope: string, action: 'publish' | 'subscribe', open: boolean): Side {
  if (!open) return forApp(allowedTopicRules(model, subjectId, decisionScope, action), app.slug);
  const all = `${app.slug}/#`;
  const settings = resolveConstraint(app.settings);
  return { filters: [all], ...(isUnconstrained(settings) ? {} : { constraints: { [all]: settings } }) };
}

/**
 * One app of a delegated session. The actor brings its own side; the principal brings, if it is an actor
 * holding the app in the same namespace, its own side too, and otherwise (a user) its topic permissions at
 * the actor's decision scope. Always `rbac`: every topic is decided against the intersected filters.
 */
function delegatedApp(model: PolicyModel, actor: ActorRecord, app: AppRecord, decisionScope: string, principalSubjectId: string): SessionGrant['apps'][number] {
  const principal = model.subject(principalSubjectId);
  const principalHoldsApp = principal?.kind === 'actor' && principal.accessScopeId === actor.accessScopeId && model.referrersOf(principal.id, 'appGrant').some((g) => g.appId === app.id);
  const sides = (action: 'publish' | 'subscribe') => {
    const own = sideOf(model, actor.subjectId, app, decisionScope, action, app.mode === 'open');
    if (principal?.kind === 'actor' && !principalHoldsApp) return { filters: [] };
    const theirs = sideOf(model, principalSubjectId, app, decisionScope, action, app.mode === 'open' && principalHoldsApp);
    return intersectSides(own, theirs);
  };
  const publish = sides('publish');
  const subscribe = sides('subscribe');
  return rbacAppGrant(app, publish, subscribe);
}

/*
 * App grants are shared by the sessions they are equal for (read-only: grants are serialised, never changed):
 * an open app's by its record (a changed app is a new record), an rbac app's by its record and the two shared
 * sides of its rules. Equal grants as the same object are what lets the refresh answer send them once without
 * comparing their content each time (shared/broker-wire.ts packRefresh).
 */
const openAppGrants = new WeakMap<AppRecord, AppGrant>();
const rbacAppGrants = new WeakMap<AppRecord, WeakMap<Side, WeakMap<Side, AppGrant>>>();

function openAppGrant(app: AppRecord): AppGrant {
  let grant = openAppGrants.get(app);
  if (!grant) {
    const all = `${app.slug}/#`;
    const settings = resolveConstraint(app.settings);
    const constraints = isUnconstrained(settings) ? {} : { publishConstraints: { [all]: settings }, subscribeConstraints: { [all]: settings } };
    openAppGrants.set(app, (grant = { appId: app.id, slug: app.slug, mode: 'open', publish: [all], subscribe: [all], ...constraints }));
  }
  return grant;
}

function sharedRbacAppGrant(app: AppRecord, publish: Side, subscribe: Side): AppGrant {
  let byPublish = rbacAppGrants.get(app);
  if (!byPublish) rbacAppGrants.set(app, (byPublish = new WeakMap()));
  let bySubscribe = byPublish.get(publish);
  if (!bySubscribe) byPublish.set(publish, (bySubscribe = new WeakMap()));
  let grant = bySubscribe.get(subscribe);
  if (!grant) bySubscribe.set(subscribe, (grant = rbacAppGrant(app, publish, subscribe)));
  return grant;
}

/** An rbac app's grant from its allowed publish and subscribe filters (with their permission fields, if any). */
function rbacAppGrant(app: { id: string; slug: string }, publish: { filters: string[]; constraints?: AppGrant['publishConstraints'] | null }, subscribe: { filters: string[]; constraints?: AppGrant['subscribeConstraints'] | null }): AppGrant {
  return {
    appId: app.id,
    slug: app.slug,
    mode: 'rbac',
    publish: publish.filters,
    subscribe: subscribe.filters,
    ...(publish.constraints ? { publishConstraints: publish.constraints } : {}),
    ...(subscribe.constraints ? { subscribeConstraints: subscribe.constraints } : {}),
  };
}

/** The topics both sides allow (pairwise filter intersections), each with the narrower permission fields. */
function intersectSides(a: Side, b: Side): Side {
  const out = new Map<string, ResolvedConstraint>();
  for (const x of a.filters) {
    for (const y of b.filters) {
      const both = intersectFilters(x, y);
      if (both === null) continue;
      const c = narrowerConstraint(a.constraints?.[x] ?? UNCONSTRAINED, b.constraints?.[y] ?? UNCONSTRAINED);
      const seen = out.get(both);
      out.set(both, seen ? widerConstraint(seen, c) : c);
    }
  }
  let constraints: Record<string, ResolvedConstraint> | undefined;
  for (const [filter, c] of out) if (!isUnconstrained(c)) (constraints ??= {})[filter] = c;
  return { filters: [...out.keys()], ...(constraints ? { constraints } : {}) };
}

/** Both sides must allow: the stricter value of each field. */
function narrowerConstraint(a: ResolvedConstraint, b: ResolvedConstraint): ResolvedConstraint {
  return { maxQos: Math.min(a.maxQos, b.maxQos) as 0 | 1 | 2, retain: a.retain && b.retain, maxPayloadBytes: minBound(a.maxPayloadBytes, b.maxPayloadBytes) };
}

/** Rules narrowed to one app: its filters, and the permission fields of those that carry any. */
function forApp(rules: ReadonlyMap<string, ResolvedConstraint>, slug: string): Side {
  // Rules are shared by the subjects holding the same roles (allowedTopicRules), and so is what they give
  // each app: computed once per rules and app. The result is read-only (grants are serialised, not changed).
  let perApp = forAppMemo.get(rules);
  if (!perApp) forAppMemo.set(rules, (perApp = new Map()));
  let side = perApp.get(slug);
  if (!side) perApp.set(slug, (side = narrowToApp(rules, slug)));
  return side;
}
const forAppMemo = new WeakMap<ReadonlyMap<string, ResolvedConstraint>, Map<string, Side>>();

function narrowToApp(rules: ReadonlyMap<string, ResolvedConstraint>, slug: string): Side {
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
