/** Hierarchical RBAC: `role`s and their assignments, `permission`s, `role-permission` links, `user`s, `membership`s. */
import type { RequestBody as Input } from '../../authz-sidecar/service/inputs.ts';
import { asSent, idArg, nullable, OPT, str, type Command } from '../framework/command.ts';
import { printDeleted, printPage, showOne } from '../framework/output.ts';
import { listAll, readCommands, resolveScope, resolveSubject } from '../framework/resource-commands.ts';

export const rbacCommands: Command[] = [
  // RBAC
  {
    name: 'role create',
    summary: 'create a role defined at a scope',
    options: {
      scope: { type: 'string', value: '<scope-id>', help: 'scope id (or a tenant/workspace/project/environment id)', required: true },
      name: OPT.name,
      description: { type: 'string', value: '<text>', help: 'description' },
    },
    async run(ctx) {
      const body = { scopeId: await resolveScope(ctx, str(ctx, 'scope')), name: str(ctx, 'name'), description: nullable(str(ctx, 'description')) };
      showOne(ctx, 'role', await ctx.client.roles.create(asSent<Input<'roleCreate'>>(body)));
    },
  },
  {
    name: 'role assign',
    summary: 'give a membership a role',
    options: { role: { type: 'string', value: '<role-id>', help: 'role id', required: true }, membership: { type: 'string', value: '<membership-id>', help: 'membership id', required: true } },
    async run(ctx) {
      const body = { roleId: str(ctx, 'role'), membershipId: str(ctx, 'membership') };
      showOne(ctx, 'roleAssignment', await ctx.client.roleAssignments.create(asSent<Input<'roleAssignmentCreate'>>(body)));
    },
  },
  {
    name: 'role unassign',
    summary: 'remove a role assignment',
    args: '<assignment-id>',
    maxPositionals: 1,
    options: {},
    async run(ctx) {
      printDeleted(ctx, await ctx.client.roleAssignments.delete(idArg(ctx)));
    },
  },
  {
    name: 'role assignments',
    summary: 'list role assignments',
    options: { role: { type: 'string', value: '<role-id>', help: 'only this role' }, membership: { type: 'string', value: '<membership-id>', help: 'only this membership' }, limit: OPT.limit, cursor: OPT.cursor, all: OPT.all },
    async run(ctx) {
      printPage(ctx, 'roleAssignment', await listAll(ctx, ctx.client.roleAssignments, { roleId: str(ctx, 'role'), membershipId: str(ctx, 'membership') }));
    },
  },
  ...readCommands('role', 'role', 'role', (ctx) => ctx.client.roles, { scope: { field: 'scopeId', help: 'only roles defined at this scope' }, tenant: { field: 'tenantId', help: 'only this tenant' } }),

  {
    name: 'permission create',
    summary: 'create a permission defined at a scope',
    options: {
      scope: { type: 'string', value: '<scope-id>', help: 'scope id (or a tenant/workspace/project/environment id)', required: true },
      action: { type: 'string', value: '<action|*>', help: 'e.g. publish, read', required: true },
      'resource-type': { type: 'string', value: '<type|*>', help: 'e.g. topic, document', required: true },
      pattern: { type: 'string', value: '<pattern>', help: "resource pattern (default '*')" },
      key: { type: 'string', value: '<key>', help: 'stable key (default derived)' },
    },
    async run(ctx) {
      const body = { scopeId: await resolveScope(ctx, str(ctx, 'scope')), action: str(ctx, 'action'), resourceType: str(ctx, 'resource-type'), resourcePattern: str(ctx, 'pattern'), key: str(ctx, 'key') };
      showOne(ctx, 'permission', await ctx.client.permissions.create(asSent<Input<'permissionCreate'>>(body)));
    },
  },
  ...readCommands('permission', 'permission', 'permission', (ctx) => ctx.client.permissions, { scope: { field: 'scopeId', help: 'only this scope' }, tenant: { field: 'tenantId', help: 'only this tenant' }, key: { field: 'key', help: 'only this key' } }),

  {
    name: 'role-permission add',
    summary: 'put a permission in a role',
    options: { role: { type: 'string', value: '<role-id>', help: 'role id', required: true }, permission: { type: 'string', value: '<perm-id>', help: 'permission id', required: true } },
    async run(ctx) {
      const body = { roleId: str(ctx, 'role'), permissionId: str(ctx, 'permission') };
      showOne(ctx, 'rolePermission', await ctx.client.rolePermissions.create(asSent<Input<'rolePermissionCreate'>>(body)));
    },
  },
  {
    name: 'role-permission list',
    summary: 'list role-permission links',
    options: { role: { type: 'string', value: '<role-id>', help: 'only this role' }, permission: { type: 'string', value: '<perm-id>', help: 'only this permission' }, limit: OPT.limit, cursor: OPT.cursor, all: OPT.all },
    async run(ctx) {
      printPage(ctx, 'rolePermission', await listAll(ctx, ctx.client.rolePermissions, { roleId: str(ctx, 'role'), permissionId: str(ctx, 'permission') }));
    },
  },
  {
    name: 'role-permission remove',
    summary: 'take a permission out of a role',
    args: '<link-id>',
    maxPositionals: 1,
    options: {},
    async run(ctx) {
      printDeleted(ctx, await ctx.client.rolePermissions.delete(idArg(ctx)));
    },
  },

  {
    name: 'user create',
    summary: 'create a user (a person signing in through Kinde)',
    options: {
      'kinde-id': { type: 'string', value: '<id>', help: 'Kinde user id', required: true },
      email: { type: 'string', value: '<email>', help: 'email address', required: true },
      'first-name': { type: 'string', value: '<text>', help: 'first name' },
      'last-name': { type: 'string', value: '<text>', help: 'last name' },
      tenant: { type: 'string', value: '<tenant-id>', help: 'default tenant' },
    },
    async run(ctx) {
      const body = {
        kindeId: str(ctx, 'kinde-id'),
        email: str(ctx, 'email'),
        firstName: nullable(str(ctx, 'first-name')),
        lastName: nullable(str(ctx, 'last-name')),
        defaultTenantId: nullable(str(ctx, 'tenant')),
      };
      showOne(ctx, 'user', await ctx.client.users.create(asSent<Input<'userCreate'>>(body)));
    },
  },
  ...readCommands('user', 'user', 'user', (ctx) => ctx.client.users, { email: { field: 'email', help: 'only this email' }, 'kinde-id': { field: 'kindeId', help: 'only this Kinde id' }, tenant: { field: 'defaultTenantId', help: 'only users with this default tenant' } }),

  {
    name: 'membership create',
    summary: 'make a subject a member of a scope',
    options: {
      subject: { type: 'string', value: '<subject-id|user-id|actor-id>', help: 'the member', required: true },
      scope: { type: 'string', value: '<scope-id>', help: 'scope id (or a tenant/workspace/project/environment id)', required: true },
    },
    async run(ctx) {
      const { subjectId } = await resolveSubject(ctx, str(ctx, 'subject'));
      const body = { subjectId, scopeId: await resolveScope(ctx, str(ctx, 'scope')) };
      showOne(ctx, 'membership', await ctx.client.memberships.create(asSent<Input<'membershipCreate'>>(body)));
    },
  },
  ...readCommands('membership', 'membership', 'membership', (ctx) => ctx.client.memberships, { subject: { field: 'subjectId', help: 'only this subject' }, scope: { field: 'scopeId', help: 'only this scope' }, tenant: { field: 'tenantId', help: 'only this tenant' } }),

];
