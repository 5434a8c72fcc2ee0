/**
 * Commands generic over a resource of the admin API: list (with filters, paging, --all), get, delete, rename,
 * create-under-a-parent; and the resolvers that accept a tenant/workspace/project/environment id where a
 * scope is meant, or a user/actor id where a subject is meant.
 */
import type { Page } from '../../client/index.ts';
import type { RequestBody as Input } from '../../authz-sidecar/service/inputs.ts';
import { asSent, flag, idArg, nullable, num, OPT, str, type Command, type Ctx, type OptSpec } from './command.ts';
import { printDeleted, printPage, showOne, type Kind } from './output.ts';

export interface ResourceLike {
  get(id: string): Promise<Record<string, unknown>>;
  list(query?: Record<string, string | number | undefined>): Promise<Page<Record<string, unknown>>>;
  delete(id: string, options?: { cascade?: boolean }): Promise<{ deleted: Array<{ kind: string; id: string }>; revision: number }>;
}

export async function listAll(ctx: Ctx, resource: ResourceLike, filters: Record<string, string | undefined>): Promise<Page<Record<string, unknown>>> {
  const query = { ...filters, limit: num(str(ctx, 'limit')) as number | undefined, cursor: str(ctx, 'cursor') };
  let page = await resource.list(query);
  if (!flag(ctx, 'all')) return page;
  const data = [...page.data];
  while (page.nextCursor) {
    page = await resource.list({ ...query, cursor: page.nextCursor });
    data.push(...page.data);
  }
  return { data, nextCursor: null, revision: page.revision };
}


/** list / get / delete for a resource; `filters` maps flags to list query fields. */
export function readCommands(
  group: string,
  kind: Kind,
  what: string,
  resource: (ctx: Ctx) => ResourceLike,
  filters: Record<string, { field: string; help: string }> = {},
  extra: Record<string, OptSpec> = {},
): Command[] {
  const filterOpts = Object.fromEntries(Object.entries(filters).map(([f, { help }]) => [f, { type: 'string', value: f === 'slug' || f === 'email' || f === 'key' ? `<${f}>` : '<id>', help } satisfies OptSpec]));
  return [
    {
      name: `${group} list`,
      summary: `list ${what}s`,
      options: { ...extra, ...filterOpts, limit: OPT.limit, cursor: OPT.cursor, all: OPT.all },
      async run(ctx) {
        const query = Object.fromEntries(Object.entries(filters).map(([f, { field }]) => [field, str(ctx, f)]));
        printPage(ctx, kind, await listAll(ctx, resource(ctx), query));
      },
    },
    {
      name: `${group} get`,
      summary: `show one ${what}`,
      args: '<id>',
      maxPositionals: 1,
      options: { ...extra },
      async run(ctx) {
        showOne(ctx, kind, await resource(ctx).get(idArg(ctx)));
      },
    },
    {
      name: `${group} delete`,
      summary: `delete a ${what}`,
      args: '<id>',
      maxPositionals: 1,
      options: { ...extra, cascade: OPT.cascade },
      async run(ctx) {
        printDeleted(ctx, await resource(ctx).delete(idArg(ctx), { cascade: flag(ctx, 'cascade') }));
      },
    },
  ];
}


export function entityUpdate(group: 'workspace' | 'project' | 'environment', resource: (ctx: Ctx) => { update(id: string, input: Input<'entityPatch'>): Promise<Record<string, unknown>> }): Command {
  return {
    name: `${group} update`,
    summary: `rename a ${group}`,
    args: '<id>',
    maxPositionals: 1,
    options: { name: { ...OPT.name, required: false }, 'external-id': { ...OPT.externalId, value: '<id|none>' } },
    async run(ctx) {
      const body = { name: str(ctx, 'name'), externalId: nullable(str(ctx, 'external-id')) };
      showOne(ctx, group, await resource(ctx).update(idArg(ctx), asSent<Input<'entityPatch'>>(body)));
    },
  };
}

/**
 * `project create` / `environment create`: an entity created under a parent (workspace / project); the tenant
 * defaults to the parent's.
 */
export function childEntityCreate(
  kind: 'project' | 'environment',
  parent: 'workspace' | 'project',
  parentField: 'workspaceId' | 'projectId',
  getParent: (ctx: Ctx, id: string) => Promise<{ tenantId: string | null }>,
  create: (ctx: Ctx, body: Record<string, unknown>) => Promise<Record<string, unknown>>,
): Command {
  return {
    name: `${kind} create`,
    summary: `create a${kind === 'environment' ? 'n' : ''} ${kind} in a ${parent}`,
    options: {
      tenant: { type: 'string', value: '<tenant-id>', help: `tenant id (default: the ${parent}'s)`, required: true },
      [parent]: { type: 'string', value: `<${parent}-id>`, help: `${parent} id`, required: true },
      name: OPT.name,
      slug: OPT.slug,
      'external-id': OPT.externalId,
    },
    async run(ctx) {
      const parentId = str(ctx, parent);
      let tenantId = str(ctx, 'tenant');
      if (tenantId === undefined && parentId) tenantId = (await getParent(ctx, parentId)).tenantId ?? undefined;
      const body = { tenantId, [parentField]: parentId, name: str(ctx, 'name'), slug: str(ctx, 'slug'), externalId: nullable(str(ctx, 'external-id')) };
      showOne(ctx, kind, await create(ctx, body));
    },
  };
}

export async function resolveScope(ctx: Ctx, v: string | undefined): Promise<string | undefined> {
  const m = v?.match(/^(tenant|workspace|project|environment)_/);
  if (!v || !m) return v;
  const resource = { tenant: ctx.client.tenants, workspace: ctx.client.workspaces, project: ctx.client.projects, environment: ctx.client.environments }[m[1] as 'tenant'];
  return (await resource.get(v)).scopeId;
}

/** A subject: a `subject_…` id as is, or the subject of a user (`user_…`) or actor (`actor_…`). */
export async function resolveSubject(ctx: Ctx, v: string | undefined): Promise<{ subjectId: string | undefined; subjectType: 'user' | 'actor' }> {
  if (v === undefined) return { subjectId: undefined, subjectType: 'user' };
  if (v.startsWith('user_')) return { subjectId: String((await ctx.client.users.get(v)).subjectId), subjectType: 'user' };
  if (v.startsWith('actor_')) return { subjectId: `subject_${v}`, subjectType: 'actor' };
  return { subjectId: v, subjectType: v.startsWith('subject_actor_') ? 'actor' : 'user' };
}
