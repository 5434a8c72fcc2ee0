import type { ScopeGateClient } from '../client/index.ts';

/*
 * Fixtures built through the admin API, shared by the tests and the bench (bench/ does not import test/).
 */

/** One organization with a workspace and a project: the frame of every seed 000 pattern. */
export async function createProject(sg: ScopeGateClient, slug: string) {
  const org = await sg.tenants.create({ name: slug, slug, kind: 'standard' });
  const ws = await sg.workspaces.create({ tenantId: org.id, name: 'Main' });
  const project = await sg.projects.create({ tenantId: org.id, workspaceId: ws.id, name: 'Messaging' });
  return { orgId: org.id, projectId: project.id, api: sg.project(org.id, project.id) };
}

/** Creates an actor (in a scope or at project level), grants it the apps, and issues a token. */
export async function createActor(api: ReturnType<ScopeGateClient['project']>, name: string, accessScopeId: string | null, appIds: string[]) {
  const actor = await api.actors.create({ name, accessScopeId, kind: 'agent' });
  for (const appId of appIds) await api.apps.grant(appId, actor.actorId);
  const { token } = await api.actors.issueToken(actor.actorId);
  return { actorId: actor.actorId, subjectId: actor.subjectId, token };
}
