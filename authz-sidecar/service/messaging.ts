import { ScopeGateError } from '../../shared/errors.ts';
import { uniqueKey } from '../model/policy-model.ts';
import type { ActorRecord, AppGrantRecord, AppRecord, ProjectRecord, ScopeRecord } from '../model/records.ts';
import type { Input } from './inputs.ts';
import { changeScopeFields, moveScope, putScope } from './scopes.ts';
import type { Tx } from './tx.ts';

/**
 * Seed 000: access scopes, actors, apps and app grants, all inside one project of one organization (tenant).
 * URLs name the organization and the project; a project of another organization is a 404, never a leak.
 */

export function projectIn(tx: Tx, orgId: string, projectId: string): ProjectRecord {
  const project = tx.get('project', projectId);
  if (!project || project.tenantId !== orgId) {
    throw new ScopeGateError('NOT_FOUND', `Project '${projectId.slice(0, 80)}' does not exist in organization '${orgId.slice(0, 80)}'.`);
  }
  return project;
}

/** An access scope of this project: a `type_access` scope whose ancestry reaches the project's scope. */
export function accessScopeIn(tx: Tx, project: ProjectRecord, scopeId: string, field: string): ScopeRecord {
  const scope = tx.get('scope', scopeId);
  const inProject = scope !== undefined && scope.typeId === 'type_access' && tx.model.ancestry(scope.id).some((s) => s.id === project.scopeId);
  const pendingInProject = scope !== undefined && scope.typeId === 'type_access' && tx.puts.has(scope.id) && scope.parentId === project.scopeId;
  if (!scope || !(inProject || pendingInProject)) {
    throw new ScopeGateError('INVALID_REFERENCE', `${field} '${scopeId.slice(0, 80)}' is not an access scope of project '${project.id}'.`, [
      { path: field, message: 'not an access scope of this project' },
    ]);
  }
  return scope;
}

export function createAccessScope(tx: Tx, project: ProjectRecord, input: Input<'accessScopeCreate'>): ScopeRecord {
  const parent = input.parentScopeId ? accessScopeIn(tx, project, input.parentScopeId, 'parentScopeId') : tx.must('scope', project.scopeId);
  const scope = putScope(tx, parent, { typeId: 'type_access', slug: input.slug, name: input.name, externalId: input.externalId ?? null });
  return input.limits ? tx.put({ ...scope, limits: input.limits }) : scope;
}

/**
 * `PATCH …/scopes/{id}`: rename, set limits, and/or move under another parent of the same project
 * (`parentScopeId`: one of its access scopes, or null for the project level). The whole subtree moves with
 * it, so every actor in it gets a new topic namespace; one commit rewrites the one scope record.
 */
export function patchAccessScope(tx: Tx, project: ProjectRecord, scope: ScopeRecord, input: Input<'accessScopePatch'>): ScopeRecord {
  let current = scope;
  if (input.parentScopeId !== undefined) {
    const parent = input.parentScopeId === null ? tx.must('scope', project.scopeId) : accessScopeIn(tx, project, input.parentScopeId, 'parentScopeId');
    current = moveScope(tx, scope, parent);
  }
  const { parentScopeId: _moved, ...fields } = input;
  if (Object.keys(fields).length === 0) return current;
  return changeScopeFields(tx, current, fields);
}

export function createActor(tx: Tx, project: ProjectRecord, input: Input<'actorCreate'>): ActorRecord {
  const scope = input.accessScopeId ? accessScopeIn(tx, project, input.accessScopeId, 'accessScopeId') : null;
  const base = tx.base('actor');
  return tx.put({
    kind: 'actor',
    ...base,
    tenantId: project.tenantId,
    subjectId: `subject_${base.id}`,
    projectId: project.id,
    name: input.name,
    actorKind: input.kind,
    accessScopeId: scope?.id ?? null,
    disabled: false,
    externalSubject: input.externalSubject ?? null,
  });
}

export function patchActor(tx: Tx, project: ProjectRecord, actor: ActorRecord, input: Input<'actorPatch'>): ActorRecord {
  let accessScopeId = actor.accessScopeId;
  if (input.accessScopeId !== undefined) {
    accessScopeId = input.accessScopeId === null ? null : accessScopeIn(tx, project, input.accessScopeId, 'accessScopeId').id;
  }
  return tx.put({
    ...actor,
    ...(input.name !== undefined ? { name: input.name } : {}),
    ...(input.disabled !== undefined ? { disabled: input.disabled } : {}),
    ...(input.externalSubject !== undefined ? { externalSubject: input.externalSubject } : {}),
    accessScopeId,
    updatedAt: tx.now,
  });
}

export function actorIn(tx: Tx, project: ProjectRecord, actorId: string): ActorRecord {
  const actor = tx.get('actor', actorId);
  if (!actor || actor.projectId !== project.id) throw new ScopeGateError('NOT_FOUND', `Actor '${actorId.slice(0, 80)}' does not exist in this project.`);
  return actor;
}

export function appIn(tx: Tx, project: ProjectRecord, appId: string): AppRecord {
  const app = tx.get('app', appId);
  if (!app || app.projectId !== project.id) throw new ScopeGateError('NOT_FOUND', `App '${appId.slice(0, 80)}' does not exist in this project.`);
  return app;
}

export function createApp(tx: Tx, project: ProjectRecord, input: Input<'appCreate'>): AppRecord {
  if (tx.model.byUniqueKey(uniqueKey('app.slug', project.id, input.slug))) {
    throw new ScopeGateError('ALREADY_EXISTS', `An app with slug '${input.slug}' already exists in this project.`, [{ path: 'slug', message: 'slug taken' }]);
  }
  return tx.put({
    kind: 'app',
    ...tx.base('app'),
    tenantId: project.tenantId,
    projectId: project.id,
    slug: input.slug,
    name: input.name,
    mode: input.mode,
    settings: input.settings ?? null,
  });
}

export function patchApp(tx: Tx, app: AppRecord, input: Input<'appPatch'>): AppRecord {
  return tx.put({
    ...app,
    ...(input.name !== undefined ? { name: input.name } : {}),
    ...(input.mode !== undefined ? { mode: input.mode } : {}),
    ...(input.settings !== undefined ? { settings: input.settings } : {}),
    updatedAt: tx.now,
  });
}

export function grantApp(tx: Tx, project: ProjectRecord, app: AppRecord, actorId: string): AppGrantRecord {
  const actor = tx.get('actor', actorId);
  if (!actor || actor.projectId !== project.id) {
    throw new ScopeGateError('INVALID_REFERENCE', `actorId '${actorId.slice(0, 80)}' is not an actor of this project.`, [{ path: 'actorId', message: 'no such actor in this project' }]);
  }
  const existing = tx.model.byUniqueKey(uniqueKey('appGrant', app.id, actor.id));
  if (existing) throw new ScopeGateError('ALREADY_EXISTS', 'This actor already has this app.', [{ path: 'actorId', message: 'already granted' }]);
  return tx.put({ kind: 'appGrant', ...tx.base('appGrant'), tenantId: project.tenantId, appId: app.id, actorId: actor.id });
}

export function findGrant(tx: Tx, app: AppRecord, actorId: string): AppGrantRecord {
  const grant = tx.model.byUniqueKey(uniqueKey('appGrant', app.id, actorId));
  if (!grant || grant.kind !== 'appGrant') throw new ScopeGateError('NOT_FOUND', 'This actor does not have this app.');
  return grant;
}
