/** `tenant`, `workspace`, `project`, `environment`: the scope tree's named levels. */
import type { RequestBody as Input } from '../../authz-sidecar/service/inputs.ts';
import { asSent, nullable, num, OPT, str, idArg, type Command } from '../framework/command.ts';
import { showOne } from '../framework/output.ts';
import { childEntityCreate, entityUpdate, readCommands } from '../framework/resource-commands.ts';

export const scopeTreeCommands: Command[] = [
  // Tenants, workspaces, projects, environments
  {
    name: 'tenant create',
    summary: 'create a tenant (organization)',
    options: {
      name: OPT.name,
      slug: OPT.slug,
      kind: { type: 'string', value: '<kind>', help: "tenant kind (default 'standard')" },
      'plan-key': { type: 'string', value: '<key>', help: 'billing plan key' },
      'billing-email': { type: 'string', value: '<email>', help: 'billing email' },
      'max-users': { type: 'string', value: '<n|none>', help: 'user limit' },
      'max-workspaces': { type: 'string', value: '<n|none>', help: 'workspace limit' },
      'external-id': OPT.externalId,
    },
    async run(ctx) {
      const body = {
        name: str(ctx, 'name'),
        slug: str(ctx, 'slug'),
        kind: str(ctx, 'kind'),
        planKey: nullable(str(ctx, 'plan-key')),
        billingEmail: nullable(str(ctx, 'billing-email')),
        maxUsers: num(str(ctx, 'max-users'), true),
        maxWorkspaces: num(str(ctx, 'max-workspaces'), true),
        externalId: nullable(str(ctx, 'external-id')),
      };
      showOne(ctx, 'tenant', await ctx.client.tenants.create(asSent<Input<'tenantCreate'>>(body)));
    },
  },
  {
    name: 'tenant update',
    summary: 'change a tenant',
    args: '<id>',
    maxPositionals: 1,
    options: {
      name: { ...OPT.name, required: false },
      kind: { type: 'string', value: '<kind>', help: 'tenant kind' },
      'plan-key': { type: 'string', value: '<key|none>', help: 'billing plan key' },
      'billing-email': { type: 'string', value: '<email|none>', help: 'billing email' },
      'max-users': { type: 'string', value: '<n|none>', help: 'user limit' },
      'max-workspaces': { type: 'string', value: '<n|none>', help: 'workspace limit' },
      'external-id': OPT.externalId,
    },
    async run(ctx) {
      const body = {
        name: str(ctx, 'name'),
        kind: str(ctx, 'kind'),
        planKey: nullable(str(ctx, 'plan-key')),
        billingEmail: nullable(str(ctx, 'billing-email')),
        maxUsers: num(str(ctx, 'max-users'), true),
        maxWorkspaces: num(str(ctx, 'max-workspaces'), true),
        externalId: nullable(str(ctx, 'external-id')),
      };
      showOne(ctx, 'tenant', await ctx.client.tenants.update(idArg(ctx), asSent<Input<'tenantPatch'>>(body)));
    },
  },
  ...readCommands('tenant', 'tenant', 'tenant', (ctx) => ctx.client.tenants, { slug: { field: 'slug', help: 'only this slug' }, 'external-id': { field: 'externalId', help: 'only this external id' } }),

  {
    name: 'workspace create',
    summary: 'create a workspace in a tenant',
    options: { tenant: { type: 'string', value: '<tenant-id>', help: 'tenant id', required: true }, name: OPT.name, slug: OPT.slug, 'external-id': OPT.externalId },
    async run(ctx) {
      const body = { tenantId: str(ctx, 'tenant'), name: str(ctx, 'name'), slug: str(ctx, 'slug'), externalId: nullable(str(ctx, 'external-id')) };
      showOne(ctx, 'workspace', await ctx.client.workspaces.create(asSent<Input<'workspaceCreate'>>(body)));
    },
  },
  entityUpdate('workspace', (ctx) => ctx.client.workspaces),
  ...readCommands('workspace', 'workspace', 'workspace', (ctx) => ctx.client.workspaces, { tenant: { field: 'tenantId', help: 'only this tenant' } }),

  childEntityCreate('project', 'workspace', 'workspaceId', (ctx, id) => ctx.client.workspaces.get(id), (ctx, body) => ctx.client.projects.create(asSent<Input<'projectCreate'>>(body))),
  entityUpdate('project', (ctx) => ctx.client.projects),
  ...readCommands('project', 'project', 'project', (ctx) => ctx.client.projects, { tenant: { field: 'tenantId', help: 'only this tenant' }, workspace: { field: 'workspaceId', help: 'only this workspace' } }),

  childEntityCreate('environment', 'project', 'projectId', (ctx, id) => ctx.client.projects.get(id), (ctx, body) => ctx.client.environments.create(asSent<Input<'environmentCreate'>>(body))),
  entityUpdate('environment', (ctx) => ctx.client.environments),
  ...readCommands('environment', 'environment', 'environment', (ctx) => ctx.client.environments, { tenant: { field: 'tenantId', help: 'only this tenant' }, project: { field: 'projectId', help: 'only this project' } }),

];
