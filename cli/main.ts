/**
 * `scopegate`: the admin CLI over the typed client, for what admins do by hand (like OpenFGA's `fga` or
 * `mosquitto_ctrl`). Run it through bin/scopegate.mjs (`npx scopegate …`) or `tsx cli/main.ts …`.
 *
 *   scopegate tenant create --name 'Acme Corp' --slug acme
 *   scopegate evaluate --subject user_… --scope scope_… --action read --resource-type doc --explain
 *
 * Body fields are sent as given: a field the schema needs but that was not passed is reported by the
 * server (400 VALIDATION_FAILED), so the CLI never disagrees with the API about what is valid. Only what
 * the CLI needs to build the URL (ids in the path) is checked here.
 *
 * Exit codes: 0 success, 1 API or network error, 2 usage error.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ScopeGateApiError, ScopeGateClient, type Page } from '../client/index.ts';
import type { EvaluateRequest } from '../client/index.ts';
import type { RequestBody as Input } from '../authz-sidecar/service/inputs.ts';
import { setupDemo } from './demo.ts';
import { cell, record, shellQuote, table, type Column } from './format.ts';

const DEFAULT_URL = 'http://127.0.0.1:8080';
const REQUEST_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------------------------------------------------
// Command model

interface OptSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** Placeholder in usage, e.g. `<id>`. */
  value?: string;
  help: string;
  /** The API needs it (shown without brackets in usage; the server reports it when missing). */
  required?: boolean;
}

type Values = Record<string, string | boolean | undefined>;

interface Ctx {
  client: ScopeGateClient;
  url: string;
  token: string;
  json: boolean;
  values: Values;
  positionals: string[];
  command: Command;
  out(text: string): void;
}

interface Command {
  /** Words, e.g. `tenant create`. */
  name: string;
  summary: string;
  /** Positional arguments in usage, e.g. `<id>`. */
  args?: string;
  /** How many positionals are allowed (default 0). */
  maxPositionals?: number;
  options: Record<string, OptSpec>;
  /** Does not talk to the API (no client needed). */
  offline?: boolean;
  run(ctx: Ctx): Promise<void>;
}

class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: Command,
    readonly group?: string,
  ) {
    super(message);
  }
}

const GLOBAL_OPTIONS: Record<string, OptSpec> = {
  url: { type: 'string', value: '<url>', help: `sidecar base URL (env SCOPEGATE_URL, default ${DEFAULT_URL})` },
  token: { type: 'string', value: '<token>', help: 'admin bearer token (env AUTHZ_ADMIN_TOKEN)' },
  json: { type: 'boolean', help: 'print the raw JSON response' },
  help: { type: 'boolean', short: 'h', help: 'show help' },
};

// ---------------------------------------------------------------------------------------------------------
// Small helpers for commands

function str(ctx: Ctx, name: string): string | undefined {
  const v = ctx.values[name];
  return typeof v === 'string' ? v : undefined;
}

function flag(ctx: Ctx, name: string): boolean {
  return ctx.values[name] === true;
}

/** A value the CLI itself needs (an id in the URL): missing is a usage error. */
function need(ctx: Ctx, name: string): string {
  const v = str(ctx, name);
  if (v === undefined || v === '') throw new UsageError(`missing required flag --${name}`, ctx.command);
  return v;
}

/** The id argument: `<id>` positional, or the named flag. */
function idArg(ctx: Ctx, flagName?: string): string {
  const v = ctx.positionals[0] ?? (flagName ? str(ctx, flagName) : undefined);
  if (!v) throw new UsageError(flagName ? `missing <id> (or --${flagName})` : 'missing <id>', ctx.command);
  return v;
}

/** Integers become numbers, `none`/`null` becomes null; anything else is sent as is, for the server to judge. */
function num(v: string | undefined, nullable = false): number | string | null | undefined {
  if (v === undefined) return undefined;
  if (nullable && (v === 'none' || v === 'null')) return null;
  return /^-?\d+$/.test(v) ? Number(v) : v;
}

function nullable(v: string | undefined): string | null | undefined {
  return v === 'none' || v === 'null' ? null : v;
}

function print(ctx: Ctx, data: unknown, human: () => string): void {
  ctx.out(ctx.json ? `${JSON.stringify(data, null, 2)}\n` : human());
}

function org(ctx: Ctx) {
  const orgId = str(ctx, 'org') ?? process.env.SCOPEGATE_ORG;
  const projectId = str(ctx, 'project') ?? process.env.SCOPEGATE_PROJECT;
  if (!orgId) throw new UsageError('missing required flag --org (or env SCOPEGATE_ORG)', ctx.command);
  if (!projectId) throw new UsageError('missing required flag --project (or env SCOPEGATE_PROJECT)', ctx.command);
  return ctx.client.project(orgId, projectId);
}

/** Tenants, workspaces, projects and environments have their own scope: accept their id where a scope id is meant. */
async function resolveScope(ctx: Ctx, v: string | undefined): Promise<string | undefined> {
  const m = v?.match(/^(tenant|workspace|project|environment)_/);
  if (!v || !m) return v;
  const resource = { tenant: ctx.client.tenants, workspace: ctx.client.workspaces, project: ctx.client.projects, environment: ctx.client.environments }[m[1] as 'tenant'];
  return (await resource.get(v)).scopeId;
}

/** A subject: a `subject_…` id as is, or the subject of a user (`user_…`) or actor (`actor_…`). */
async function resolveSubject(ctx: Ctx, v: string | undefined): Promise<{ subjectId: string | undefined; subjectType: 'user' | 'actor' }> {
  if (v === undefined) return { subjectId: undefined, subjectType: 'user' };
  if (v.startsWith('user_')) return { subjectId: String((await ctx.client.users.get(v)).subjectId), subjectType: 'user' };
  if (v.startsWith('actor_')) return { subjectId: `subject_${v}`, subjectType: 'actor' };
  return { subjectId: v, subjectType: v.startsWith('subject_actor_') ? 'actor' : 'user' };
}

const OPT = {
  org: { type: 'string', value: '<tenant-id>', help: 'organization (tenant) id (or env SCOPEGATE_ORG)', required: true },
  project: { type: 'string', value: '<project-id>', help: 'project id (or env SCOPEGATE_PROJECT)', required: true },
  limit: { type: 'string', value: '<n>', help: 'page size (default 100)' },
  cursor: { type: 'string', value: '<cursor>', help: 'continue after this cursor' },
  all: { type: 'boolean', help: 'follow cursors and list everything' },
  cascade: { type: 'boolean', help: 'also delete everything that depends on it' },
  name: { type: 'string', value: '<text>', help: 'display name', required: true },
  slug: { type: 'string', value: '<slug>', help: 'lowercase letters, digits, dashes' },
  externalId: { type: 'string', value: '<id>', help: 'your own id for it' },
  mqttHost: { type: 'string', value: '<host>', help: 'broker host for the printed commands (default 127.0.0.1)' },
  mqttPort: { type: 'string', value: '<port>', help: 'broker port for the printed commands (default 1883)' },
} satisfies Record<string, OptSpec>;

// ---------------------------------------------------------------------------------------------------------
// Columns

const col = (header: string, value: Column['value'], max?: number): Column => ({ header, value, ...(max ? { max } : {}) });
const COLUMNS = {
  tenant: [col('id', 'id'), col('slug', 'slug'), col('name', 'name'), col('kind', 'kind'), col('scope', 'scopeId')],
  workspace: [col('id', 'id'), col('slug', 'slug'), col('name', 'name'), col('tenant', 'tenantId'), col('scope', 'scopeId')],
  project: [col('id', 'id'), col('slug', 'slug'), col('name', 'name'), col('workspace', 'workspaceId'), col('scope', 'scopeId')],
  environment: [col('id', 'id'), col('slug', 'slug'), col('name', 'name'), col('project', 'projectId'), col('scope', 'scopeId')],
  scope: [col('id', 'id'), col('slug', 'slug'), col('name', 'name'), col('parent', 'parentId')],
  app: [col('id', 'id'), col('slug', 'slug'), col('name', 'name'), col('mode', 'mode')],
  appGrant: [col('id', 'id'), col('app', 'appId'), col('actor', 'actorId')],
  actor: [col('id', 'id'), col('name', 'name'), col('kind', 'kind'), col('scope', 'accessScopeId'), col('disabled', 'disabled'), col('subject', 'subjectId')],
  secret: [col('id', 'id'), col('actor', 'actorId'), col('prefix', 'prefix'), col('created', 'createdAt')],
  role: [col('id', 'id'), col('name', 'name'), col('scope', 'scopeId'), col('description', 'description', 40)],
  permission: [col('id', 'id'), col('key', 'key'), col('action', 'action'), col('resource type', 'resourceType'), col('pattern', 'resourcePattern'), col('scope', 'scopeId')],
  rolePermission: [col('id', 'id'), col('role', 'roleId'), col('permission', 'permissionId')],
  user: [col('id', 'id'), col('email', 'email'), col('kinde id', 'kindeId'), col('subject', 'subjectId'), col('default tenant', 'defaultTenantId')],
  membership: [col('id', 'id'), col('subject', 'subjectId'), col('scope', 'scopeId')],
  roleAssignment: [col('id', 'id'), col('role', 'roleId'), col('membership', 'membershipId')],
  session: [col('session', 'sessionId'), col('actor', 'actorId'), col('client id', 'clientId', 30), col('scope', (r) => r.accessScopeId ?? '(project)'), col('broker', 'brokerId', 24), col('since', 'connectedAt'), col('state', 'state'), col('subscriptions', (r) => (Array.isArray(r.subscriptions) ? r.subscriptions.join(' ') : ''), 60)],
  audit: [col('seq', 'seq'), col('at', 'at'), col('principal', 'principal'), col('action', 'action'), col('tenants', (r) => (Array.isArray(r.tenantIds) ? r.tenantIds.join(',') : r.tenantIds)), col('ids', auditIds, 70)],
} satisfies Record<string, Column[]>;
type Kind = keyof typeof COLUMNS;

function auditIds(r: Record<string, unknown>): string {
  const ids = new Set<string>();
  for (const side of [r.after, r.before]) {
    if (!Array.isArray(side)) continue;
    for (const x of side) if (x && typeof x === 'object' && typeof (x as { id?: unknown }).id === 'string') ids.add((x as { id: string }).id);
  }
  return [...ids].join(',');
}

function showOne(ctx: Ctx, kind: Kind, data: Record<string, unknown>): void {
  print(ctx, data, () => table([data], COLUMNS[kind]));
}

// ---------------------------------------------------------------------------------------------------------
// Generic commands over a resource

interface ResourceLike {
  get(id: string): Promise<Record<string, unknown>>;
  list(query?: Record<string, string | number | undefined>): Promise<Page<Record<string, unknown>>>;
  delete(id: string, options?: { cascade?: boolean }): Promise<{ deleted: Array<{ kind: string; id: string }>; revision: number }>;
}

async function listAll(ctx: Ctx, resource: ResourceLike, filters: Record<string, string | undefined>): Promise<Page<Record<string, unknown>>> {
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

function printPage(ctx: Ctx, kind: Kind, page: Page<Record<string, unknown>>): void {
  print(ctx, page, () => `${table(page.data, COLUMNS[kind])}${page.nextCursor ? `(more: --cursor ${page.nextCursor}, or --all)\n` : ''}`);
}

function printDeleted(ctx: Ctx, res: { deleted: Array<{ kind: string; id: string }>; revision: number }): void {
  print(ctx, res, () => table(res.deleted as unknown as Array<Record<string, unknown>>, [col('deleted', 'kind'), col('id', 'id')]));
}

/** list / get / delete for a resource; `filters` maps flags to list query fields. */
function readCommands(
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

/** The actor as a flag, for commands that also take it as the `<actor-id>` argument. */
const ACTOR_FLAG: OptSpec = { type: 'string', value: '<actor-id>', help: 'the actor (instead of the <actor-id> argument)' };

const projectOpts = { org: OPT.org, project: OPT.project } satisfies Record<string, OptSpec>;

// ---------------------------------------------------------------------------------------------------------
// The commands

const commands: Command[] = [
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
      showOne(ctx, 'tenant', await ctx.client.tenants.create(body as Input<'tenantCreate'>));
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
      showOne(ctx, 'tenant', await ctx.client.tenants.update(idArg(ctx), body as Input<'tenantPatch'>));
    },
  },
  ...readCommands('tenant', 'tenant', 'tenant', (ctx) => ctx.client.tenants, { slug: { field: 'slug', help: 'only this slug' }, 'external-id': { field: 'externalId', help: 'only this external id' } }),

  {
    name: 'workspace create',
    summary: 'create a workspace in a tenant',
    options: { tenant: { type: 'string', value: '<tenant-id>', help: 'tenant id', required: true }, name: OPT.name, slug: OPT.slug, 'external-id': OPT.externalId },
    async run(ctx) {
      const body = { tenantId: str(ctx, 'tenant'), name: str(ctx, 'name'), slug: str(ctx, 'slug'), externalId: nullable(str(ctx, 'external-id')) };
      showOne(ctx, 'workspace', await ctx.client.workspaces.create(body as Input<'workspaceCreate'>));
    },
  },
  entityUpdate('workspace', (ctx) => ctx.client.workspaces),
  ...readCommands('workspace', 'workspace', 'workspace', (ctx) => ctx.client.workspaces, { tenant: { field: 'tenantId', help: 'only this tenant' } }),

  childEntityCreate('project', 'workspace', 'workspaceId', (ctx, id) => ctx.client.workspaces.get(id), (ctx, body) => ctx.client.projects.create(body as Input<'projectCreate'>)),
  entityUpdate('project', (ctx) => ctx.client.projects),
  ...readCommands('project', 'project', 'project', (ctx) => ctx.client.projects, { tenant: { field: 'tenantId', help: 'only this tenant' }, workspace: { field: 'workspaceId', help: 'only this workspace' } }),

  childEntityCreate('environment', 'project', 'projectId', (ctx, id) => ctx.client.projects.get(id), (ctx, body) => ctx.client.environments.create(body as Input<'environmentCreate'>)),
  entityUpdate('environment', (ctx) => ctx.client.environments),
  ...readCommands('environment', 'environment', 'environment', (ctx) => ctx.client.environments, { tenant: { field: 'tenantId', help: 'only this tenant' }, project: { field: 'projectId', help: 'only this project' } }),

  // Seed 000: access scopes, apps, actors, credentials inside one organization's project
  {
    name: 'scope create',
    summary: "create an access scope in a project (a tenant's customer; its slug is the topic namespace)",
    options: {
      ...projectOpts,
      slug: { ...OPT.slug, required: true },
      name: OPT.name,
      parent: { type: 'string', value: '<scope-id>', help: 'parent access scope (default: the project)' },
      'external-id': OPT.externalId,
    },
    async run(ctx) {
      const body = { slug: str(ctx, 'slug'), name: str(ctx, 'name'), parentScopeId: str(ctx, 'parent'), externalId: nullable(str(ctx, 'external-id')) };
      showOne(ctx, 'scope', await org(ctx).scopes.create(body as Input<'accessScopeCreate'>));
    },
  },
  ...readCommands('scope', 'scope', 'access scope', (ctx) => org(ctx).scopes, {}, projectOpts),

  {
    name: 'app create',
    summary: 'create an app (a topic prefix actors are granted)',
    options: {
      ...projectOpts,
      slug: { ...OPT.slug, required: true },
      name: OPT.name,
      mode: { type: 'string', value: '<open|rbac>', help: "'open': the whole prefix; 'rbac': topics from permissions (default open)" },
    },
    async run(ctx) {
      const body = { slug: str(ctx, 'slug'), name: str(ctx, 'name'), mode: str(ctx, 'mode') };
      showOne(ctx, 'app', await org(ctx).apps.create(body as Input<'appCreate'>));
    },
  },
  {
    name: 'app grant',
    summary: 'let an actor use an app',
    options: { ...projectOpts, app: { type: 'string', value: '<app-id>', help: 'app id', required: true }, actor: { type: 'string', value: '<actor-id>', help: 'actor id', required: true } },
    async run(ctx) {
      const res = await org(ctx).apps.grant(need(ctx, 'app'), need(ctx, 'actor'));
      showOne(ctx, 'appGrant', res);
    },
  },
  {
    name: 'app revoke',
    summary: "withdraw an actor's app grant",
    options: { ...projectOpts, app: { type: 'string', value: '<app-id>', help: 'app id', required: true }, actor: { type: 'string', value: '<actor-id>', help: 'actor id', required: true } },
    async run(ctx) {
      printDeleted(ctx, await org(ctx).apps.revoke(need(ctx, 'app'), need(ctx, 'actor')));
    },
  },
  {
    name: 'app grants',
    summary: 'list the actors granted an app',
    options: { ...projectOpts, app: { type: 'string', value: '<app-id>', help: 'app id', required: true } },
    async run(ctx) {
      printPage(ctx, 'appGrant', await org(ctx).apps.grants(need(ctx, 'app')));
    },
  },
  ...readCommands('app', 'app', 'app', (ctx) => org(ctx).apps, {}, projectOpts),

  {
    name: 'actor create',
    summary: 'create an actor (a device, agent or service that connects over MQTT)',
    options: {
      ...projectOpts,
      name: OPT.name,
      scope: { type: 'string', value: '<scope-id>', help: 'access scope it lives in (default: none)' },
      kind: { type: 'string', value: '<device|agent|service>', help: 'default device' },
    },
    async run(ctx) {
      const body = { name: str(ctx, 'name'), kind: str(ctx, 'kind'), accessScopeId: nullable(str(ctx, 'scope')) };
      showOne(ctx, 'actor', await org(ctx).actors.create(body as Input<'actorCreate'>));
    },
  },
  {
    name: 'actor move',
    summary: 'move an actor to another access scope (or `none`)',
    args: '<actor-id>',
    maxPositionals: 1,
    options: { ...projectOpts, actor: ACTOR_FLAG, scope: { type: 'string', value: '<scope-id|none>', help: 'target access scope', required: true } },
    async run(ctx) {
      const scope = need(ctx, 'scope');
      showOne(ctx, 'actor', await org(ctx).actors.update(idArg(ctx, 'actor'), { accessScopeId: nullable(scope) } as Input<'actorPatch'>));
    },
  },
  ...(['disable', 'enable'] as const).map(
    (verb): Command => ({
      name: `actor ${verb}`,
      summary: verb === 'disable' ? 'refuse the actor on its next connect (credentials kept)' : 'let a disabled actor connect again',
      args: '<actor-id>',
      maxPositionals: 1,
      options: { ...projectOpts, actor: ACTOR_FLAG },
      async run(ctx) {
        showOne(ctx, 'actor', await org(ctx).actors.update(idArg(ctx, 'actor'), { disabled: verb === 'disable' }));
      },
    }),
  ),
  {
    name: 'actor rename',
    summary: 'rename an actor',
    args: '<actor-id>',
    maxPositionals: 1,
    options: { ...projectOpts, actor: ACTOR_FLAG, name: OPT.name },
    async run(ctx) {
      showOne(ctx, 'actor', await org(ctx).actors.update(idArg(ctx, 'actor'), { name: str(ctx, 'name') } as Input<'actorPatch'>));
    },
  },
  ...readCommands('actor', 'actor', 'actor', (ctx) => org(ctx).actors, {}, projectOpts),

  {
    name: 'token issue',
    summary: "issue a JWT for an actor (its MQTT password) and print a mosquitto_pub line",
    args: '<actor-id>',
    maxPositionals: 1,
    options: {
      ...projectOpts,
      actor: ACTOR_FLAG,
      ttl: { type: 'string', value: '<seconds>', help: 'lifetime (default 3600)' },
      topic: { type: 'string', value: '<topic>', help: "topic for the printed command (default: '<first granted app>/hello')" },
      'mqtt-host': OPT.mqttHost,
      'mqtt-port': OPT.mqttPort,
    },
    async run(ctx) {
      const api = org(ctx);
      const actorId = idArg(ctx, 'actor');
      const ttl = num(str(ctx, 'ttl'));
      const res = await api.actors.issueToken(actorId, (ttl === undefined ? {} : { ttlSeconds: ttl }) as Input<'tokenCreate'>);
      if (ctx.json) return print(ctx, res, () => '');
      const topic = str(ctx, 'topic') ?? (await guessTopic(api, actorId));
      ctx.out(
        `${record({ actor: res.actorId, expires: res.expiresAt, username: res.mqtt.username, token: res.token })}\n` +
          `# publish as this actor:\n${mosquitto(ctx, 'pub', res.mqtt.username, res.mqtt.password, topic)}\n`,
      );
    },
  },
  {
    name: 'secret issue',
    summary: 'issue a long-lived secret for an actor (shown once; usable as the MQTT password)',
    args: '<actor-id>',
    maxPositionals: 1,
    options: {
      ...projectOpts,
      actor: ACTOR_FLAG,
      topic: { type: 'string', value: '<topic>', help: "topic for the printed command (default: '<first granted app>/hello')" },
      'mqtt-host': OPT.mqttHost,
      'mqtt-port': OPT.mqttPort,
    },
    async run(ctx) {
      const api = org(ctx);
      const actorId = idArg(ctx, 'actor');
      const res = await api.actors.issueSecret(actorId);
      if (ctx.json) return print(ctx, res, () => '');
      const topic = str(ctx, 'topic') ?? (await guessTopic(api, actorId));
      ctx.out(
        `${record({ actor: actorId, secretId: res.secretId, username: res.mqtt.username, secret: res.secret })}` +
          `(the secret is shown only once)\n\n# publish as this actor:\n${mosquitto(ctx, 'pub', res.mqtt.username, res.mqtt.password, topic)}\n`,
      );
    },
  },
  {
    name: 'secret list',
    summary: "list an actor's secrets (never the secrets themselves)",
    args: '<actor-id>',
    maxPositionals: 1,
    options: { ...projectOpts, actor: ACTOR_FLAG },
    async run(ctx) {
      printPage(ctx, 'secret', await org(ctx).actors.listSecrets(idArg(ctx, 'actor')));
    },
  },
  {
    name: 'secret revoke',
    summary: "revoke one of an actor's secrets",
    options: { ...projectOpts, actor: { type: 'string', value: '<actor-id>', help: 'actor id', required: true }, secret: { type: 'string', value: '<secret-id>', help: 'secret id', required: true } },
    async run(ctx) {
      printDeleted(ctx, await org(ctx).actors.revokeSecret(need(ctx, 'actor'), need(ctx, 'secret')));
    },
  },

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
      showOne(ctx, 'role', await ctx.client.roles.create(body as Input<'roleCreate'>));
    },
  },
  {
    name: 'role assign',
    summary: 'give a membership a role',
    options: { role: { type: 'string', value: '<role-id>', help: 'role id', required: true }, membership: { type: 'string', value: '<membership-id>', help: 'membership id', required: true } },
    async run(ctx) {
      const body = { roleId: str(ctx, 'role'), membershipId: str(ctx, 'membership') };
      showOne(ctx, 'roleAssignment', await ctx.client.roleAssignments.create(body as Input<'roleAssignmentCreate'>));
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
      showOne(ctx, 'permission', await ctx.client.permissions.create(body as Input<'permissionCreate'>));
    },
  },
  ...readCommands('permission', 'permission', 'permission', (ctx) => ctx.client.permissions, { scope: { field: 'scopeId', help: 'only this scope' }, tenant: { field: 'tenantId', help: 'only this tenant' }, key: { field: 'key', help: 'only this key' } }),

  {
    name: 'role-permission add',
    summary: 'put a permission in a role',
    options: { role: { type: 'string', value: '<role-id>', help: 'role id', required: true }, permission: { type: 'string', value: '<perm-id>', help: 'permission id', required: true } },
    async run(ctx) {
      const body = { roleId: str(ctx, 'role'), permissionId: str(ctx, 'permission') };
      showOne(ctx, 'rolePermission', await ctx.client.rolePermissions.create(body as Input<'rolePermissionCreate'>));
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
      showOne(ctx, 'user', await ctx.client.users.create(body as Input<'userCreate'>));
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
      showOne(ctx, 'membership', await ctx.client.memberships.create(body as Input<'membershipCreate'>));
    },
  },
  ...readCommands('membership', 'membership', 'membership', (ctx) => ctx.client.memberships, { subject: { field: 'subjectId', help: 'only this subject' }, scope: { field: 'scopeId', help: 'only this scope' }, tenant: { field: 'tenantId', help: 'only this tenant' } }),

  // Decisions, audit, keys
  {
    name: 'evaluate',
    summary: 'ask for a decision: may this subject do this action here?',
    options: {
      subject: { type: 'string', value: '<subject-id|user-id|actor-id>', help: 'who asks', required: true },
      'subject-type': { type: 'string', value: '<user|actor>', help: 'default: from the id' },
      scope: { type: 'string', value: '<scope-id>', help: 'where (a scope, or a tenant/workspace/project/environment id)', required: true },
      action: { type: 'string', value: '<action>', help: 'e.g. publish, read', required: true },
      'resource-type': { type: 'string', value: '<type>', help: 'e.g. topic', required: true },
      'resource-id': { type: 'string', value: '<id>', help: 'e.g. the topic' },
      explain: { type: 'boolean', help: 'print the trace: which grants were considered and why they did or did not apply' },
    },
    async run(ctx) {
      const subject = await resolveSubject(ctx, str(ctx, 'subject'));
      const subjectType = str(ctx, 'subject-type') ?? subject.subjectType;
      const request = {
        actor: { subjectId: subject.subjectId, subjectType },
        scopeId: await resolveScope(ctx, str(ctx, 'scope')),
        action: str(ctx, 'action'),
        resource: { resourceType: str(ctx, 'resource-type'), resourceId: str(ctx, 'resource-id') },
      };
      const d = await ctx.client.evaluate(request as EvaluateRequest, { explain: flag(ctx, 'explain') });
      print(ctx, d, () => {
        let s = d.decision === 'ALLOWED' ? 'ALLOWED\n' : `DENIED${d.reason ? ` (${d.reason})` : ''}\n`;
        if (d.grant) s += record(d.grant, ['roleName', 'roleId', 'permissionKey', 'permissionId', 'membershipId', 'membershipScopeId']);
        s += `path: ${d.path.join(' → ')}\nrevision: ${d.revision}\n`;
        if (subjectType === 'actor' && request.resource.resourceType === 'topic' && d.decision === 'DENIED') {
          s += 'note: over MQTT an actor may also publish/subscribe through an open app it is granted; `scopegate mqtt explain` answers what the broker decides\n';
        }
        if (d.trace) {
          s += `\ntrace:\n${table(d.trace, [col('membership', 'membershipId'), col('at scope', 'membershipScopeId'), col('role', 'roleId'), col('permission', (r) => r.permissionKey ?? r.permissionId), col('result', 'result'), col('reason', (r) => (r.overrideScopeId ? `${cell(r.reason)} @ ${cell(r.overrideScopeId)}` : r.reason))])}`;
        }
        return s;
      });
    },
  },
  {
    name: 'audit tail',
    summary: 'show the latest audit entries (oldest first); --follow keeps printing new ones',
    options: {
      limit: { type: 'string', value: '<n>', help: 'how many (default 20)' },
      follow: { type: 'boolean', short: 'f', help: 'poll every second and print new entries (Ctrl-C stops)' },
      tenant: { type: 'string', value: '<tenant-id>', help: 'only entries about this tenant' },
    },
    async run(ctx) {
      await auditTail(ctx);
    },
  },
  {
    name: 'mqtt explain',
    summary: 'may this actor publish / subscribe to this topic? what the broker would decide, and why',
    options: {
      actor: { type: 'string', value: '<actor-id>', help: 'the MQTT actor (its username)', required: true },
      topic: { type: 'string', value: '<topic>', help: 'as the client writes it (a filter for subscribe)', required: true },
      action: { type: 'string', value: '<publish|subscribe>', help: 'default publish' },
    },
    async run(ctx) {
      const action = str(ctx, 'action') ?? 'publish';
      if (action !== 'publish' && action !== 'subscribe') throw new UsageError('--action must be publish or subscribe', ctx.command);
      const e = await ctx.client.mqttExplain({ actorId: need(ctx, 'actor'), topic: need(ctx, 'topic'), action });
      print(ctx, e, () => {
        let out = e.decision === 'ALLOWED' ? `ALLOWED → ${e.internalTopic}\n` : `DENIED (${e.reason})\n`;
        for (const s of e.steps) out += `  ${s.ok ? 'ok  ' : 'FAIL'} ${s.step.padEnd(12)} ${explainStep(s)}\n`;
        return out;
      });
    },
  },
  {
    name: 'sessions list',
    summary: 'live MQTT sessions: actor, broker, since when, subscriptions (client view)',
    options: {
      tenant: { type: 'string', value: '<tenant-id>', help: 'only this tenant' },
      project: { type: 'string', value: '<project-id>', help: 'only this project' },
      scope: { type: 'string', value: '<scope-id>', help: 'only sessions in this scope or below it' },
      actor: { type: 'string', value: '<actor-id>', help: 'only this actor' },
      broker: { type: 'string', value: '<broker-id>', help: 'only this broker' },
      limit: { type: 'string', value: '<n>', help: 'at most n (default 100, max 1000)' },
    },
    async run(ctx) {
      const limit = num(str(ctx, 'limit'));
      if (limit !== undefined && typeof limit !== 'number') throw new UsageError('--limit must be a number', ctx.command);
      const query = { tenantId: str(ctx, 'tenant'), projectId: str(ctx, 'project'), scopeId: str(ctx, 'scope'), actorId: str(ctx, 'actor'), brokerId: str(ctx, 'broker'), ...(limit === undefined ? {} : { limit }) };
      const res = await ctx.client.sessions(Object.fromEntries(Object.entries(query).filter(([, v]) => v !== undefined)));
      print(ctx, res, () => `${table(res.data as unknown as Array<Record<string, unknown>>, COLUMNS.session)}${res.total > res.data.length ? `(${res.data.length} of ${res.total})\n` : ''}`);
    },
  },
  {
    name: 'sessions disconnect',
    summary: 'ask the owning broker to close a live session',
    args: '<session-id>',
    maxPositionals: 1,
    options: {},
    async run(ctx) {
      const res = await ctx.client.disconnectSession(idArg(ctx));
      print(ctx, res, () => `disconnect requested: ${res.sessionId} on ${res.brokerId}\n`);
    },
  },
  {
    name: 'jwks',
    summary: 'print the public keys tokens are signed with',
    options: {},
    async run(ctx) {
      const res = await ctx.client.jwks();
      print(ctx, res, () => table(res.keys, [col('kid', 'kid'), col('alg', 'alg'), col('kty', 'kty'), col('crv', 'crv'), col('use', 'use')]));
    },
  },
  {
    name: 'demo',
    summary: 'set up two isolated tenants with actors and print mosquitto_sub / mosquitto_pub commands to try',
    options: {
      'mqtt-host': OPT.mqttHost,
      'mqtt-port': OPT.mqttPort,
      ttl: { type: 'string', value: '<seconds>', help: 'token lifetime (default 86400)' },
      suffix: { type: 'string', value: '<text>', help: 'slug suffix for the demo tenants (default random)' },
    },
    async run(ctx) {
      const port = num(str(ctx, 'mqtt-port') ?? '1883');
      if (typeof port !== 'number') throw new UsageError('--mqtt-port must be a number', ctx.command);
      const ttl = num(str(ctx, 'ttl'));
      if (ttl !== undefined && typeof ttl !== 'number') throw new UsageError('--ttl must be a number of seconds', ctx.command);
      const suffix = str(ctx, 'suffix');
      const result = await setupDemo(ctx.client, {
        mqttHost: str(ctx, 'mqtt-host') ?? '127.0.0.1',
        mqttPort: port,
        ...(ttl === undefined ? {} : { ttlSeconds: ttl }),
        ...(suffix === undefined ? {} : { suffix }),
      });
      print(ctx, result, () => `${table(result.actors as unknown as Array<Record<string, unknown>>, [col('tenant', 'tenant'), col('actor', 'actorId'), col('topic', 'topic')])}\n${result.commands.join('\n')}\n`);
    },
  },
];

/** One step of an MQTT explanation as one line. */
function explainStep(s: Record<string, unknown>): string {
  switch (s.step) {
    case 'actor':
      return String(s.detail);
    case 'topic_rules':
      return s.ok ? `valid topic, app level '${String(s.app)}'` : `refused: ${String(s.reason)}`;
    case 'app_grant': {
      const app = s.app as { slug: string; mode: string; appId: string } | undefined;
      return app ? `granted app '${app.slug}' (${app.mode}, ${app.appId})` : `not granted (granted: ${(s.granted as string[]).join(', ') || 'none'})`;
    }
    case 'rbac':
      if (s.skipped) return 'open app: no permission needed';
      return s.ok ? `allowed by pattern '${String(s.pattern)}' at ${String(s.scopeId)}` : `no ${String(s.action)} pattern allows it (allowed: ${(s.allowedPatterns as string[]).join(', ') || 'none'}; evaluate: ${String((s.evaluate as { reason?: string } | undefined)?.reason ?? '')})`;
    case 'namespace':
      return `namespace '${String(s.namespace)}' → ${String(s.internalTopic)}`;
    default:
      return '';
  }
}

function entityUpdate(group: 'workspace' | 'project' | 'environment', resource: (ctx: Ctx) => { update(id: string, input: Input<'entityPatch'>): Promise<Record<string, unknown>> }): Command {
  return {
    name: `${group} update`,
    summary: `rename a ${group}`,
    args: '<id>',
    maxPositionals: 1,
    options: { name: { ...OPT.name, required: false }, 'external-id': { ...OPT.externalId, value: '<id|none>' } },
    async run(ctx) {
      const body = { name: str(ctx, 'name'), externalId: nullable(str(ctx, 'external-id')) };
      showOne(ctx, group, await resource(ctx).update(idArg(ctx), body as Input<'entityPatch'>));
    },
  };
}

/**
 * `project create` / `environment create`: an entity created under a parent (workspace / project); the tenant
 * defaults to the parent's.
 */
function childEntityCreate(
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

// ---------------------------------------------------------------------------------------------------------
// Command helpers that talk more

function mosquitto(ctx: Ctx, tool: 'pub' | 'sub', username: string, password: string, topic: string): string {
  const host = str(ctx, 'mqtt-host') ?? '127.0.0.1';
  const port = str(ctx, 'mqtt-port') ?? '1883';
  const conn = `-h ${shellQuote(host)} -p ${shellQuote(port)} -u ${shellQuote(username)} -P ${shellQuote(password)}`;
  return tool === 'pub' ? `mosquitto_pub ${conn} -t ${shellQuote(topic)} -m 'hello'` : `mosquitto_sub ${conn} -t ${shellQuote(topic)} -v`;
}

/** `<slug>/hello` for the first app the actor is granted (topics are written `<app>/<rest>`). */
async function guessTopic(api: ReturnType<ScopeGateClient['project']>, actorId: string): Promise<string> {
  try {
    const apps = await api.apps.list({ limit: 50 });
    for (const app of apps.data) {
      const grants = await api.apps.grants(app.appId);
      if (grants.data.some((g) => g.actorId === actorId)) return `${app.slug}/hello`;
    }
  } catch {
    /* only a convenience */
  }
  return 'APP/hello';
}

type AuditEntry = Record<string, unknown> & { seq: number };

async function auditTail(ctx: Ctx): Promise<void> {
  const limitArg = num(str(ctx, 'limit') ?? '20');
  if (typeof limitArg !== 'number' || limitArg < 1) throw new UsageError('--limit must be a positive number', ctx.command);
  const tenantId = str(ctx, 'tenant');
  const first = await ctx.client.audit({ limit: limitArg, ...(tenantId ? { tenantId } : {}) });
  const follow = flag(ctx, 'follow');
  const emit = (entries: AuditEntry[], header: boolean) => {
    if (ctx.json) {
      for (const e of entries) ctx.out(`${JSON.stringify(e)}\n`);
      return;
    }
    if (entries.length === 0) return;
    const text = table(entries, COLUMNS.audit);
    ctx.out(header ? text : text.slice(text.indexOf('\n') + 1));
  };
  const ascending = [...first.data].sort((a, b) => a.seq - b.seq);
  if (!follow) {
    print(ctx, first, () => table(ascending, COLUMNS.audit));
    return;
  }
  emit(ascending, true);
  let last = ascending.at(-1)?.seq ?? 0;
  let printedHeader = ascending.length > 0;
  let warned = false;
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000));
    try {
      const fresh: AuditEntry[] = [];
      let before: number | undefined;
      // Page back until we reach what was already printed (at most 10 pages per poll).
      for (let i = 0; i < 10; i++) {
        const page = await ctx.client.audit({ limit: 100, ...(before ? { before } : {}), ...(tenantId ? { tenantId } : {}) });
        const newer = page.data.filter((e) => e.seq > last);
        fresh.push(...newer);
        if (newer.length < page.data.length || page.nextBefore === null) break;
        before = page.nextBefore;
      }
      warned = false;
      if (fresh.length === 0) continue;
      fresh.sort((a, b) => a.seq - b.seq);
      emit(fresh, !printedHeader);
      printedHeader = true;
      last = fresh.at(-1)!.seq;
    } catch (e) {
      if (!warned) process.stderr.write(`warning: ${e instanceof Error ? e.message : String(e)} (retrying every second)\n`);
      warned = true;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Usage

const groups = [...new Set(commands.map((c) => c.name.split(' ')[0]!))];

function optionUsage(name: string, o: OptSpec): string {
  const s = o.type === 'boolean' ? `--${name}` : `--${name} ${o.value ?? '<value>'}`;
  return o.required ? s : `[${s}]`;
}

function synopsis(c: Command): string {
  const opts = Object.entries(c.options).map(([n, o]) => optionUsage(n, o));
  return ['scopegate', c.name, ...(c.args ? [c.args] : []), ...opts].join(' ');
}

function commandHelp(c: Command): string {
  const rows = Object.entries({ ...c.options, ...GLOBAL_OPTIONS }).map(([n, o]) => {
    const flagText = `${o.short ? `-${o.short}, ` : '    '}--${n}${o.type === 'string' ? ` ${o.value ?? '<value>'}` : ''}`;
    return `  ${flagText.padEnd(44)} ${o.help}${o.required ? ' (required)' : ''}`;
  });
  return `${c.summary}\n\nusage: ${synopsis(c)}\n\noptions:\n${rows.join('\n')}\n`;
}

function groupHelp(group: string): string {
  const cs = commands.filter((c) => c.name.split(' ')[0] === group);
  return `usage:\n${cs.map((c) => `  ${synopsis(c)}`).join('\n')}\n\nRun 'scopegate ${group} <command> --help' for details.\n`;
}

const GROUP_SUMMARY: Record<string, string> = {
  tenant: 'tenants (organizations)',
  workspace: 'workspaces in a tenant',
  project: 'projects in a workspace',
  environment: 'environments in a project',
  scope: 'access scopes in a project (--org --project)',
  app: 'apps and their actor grants (--org --project)',
  actor: 'MQTT actors: devices, agents, services (--org --project)',
  token: "an actor's JWT + a mosquitto_pub line (--org --project)",
  secret: "an actor's long-lived secrets (--org --project)",
  role: 'roles and role assignments',
  permission: 'permissions',
  'role-permission': 'which permissions a role holds',
  user: 'users (people)',
  membership: 'subjects that are members of a scope',
  audit: 'the audit log',
  sessions: 'live MQTT sessions (list, disconnect)',
  mqtt: 'MQTT decisions explained',
};

function mainHelp(): string {
  const rows = groups.map((g) => {
    const cs = commands.filter((c) => c.name.split(' ')[0] === g);
    const single = cs.length === 1 && cs[0]!.name === g;
    return [g, single ? cs[0]!.summary : `${cs.map((c) => c.name.split(' ')[1]).join(' | ')}  — ${GROUP_SUMMARY[g] ?? ''}`] as const;
  });
  const width = Math.max(...rows.map(([g]) => g.length));
  return (
    `scopegate: admin CLI for ScopeGate (multi-tenant MQTT broker + authorization sidecar)\n\n` +
    `usage: scopegate <command> [<subcommand>] [options] [--url <url>] [--token <token>] [--json]\n\n` +
    `commands:\n${rows.map(([g, text]) => `  ${g.padEnd(width)}  ${text}`).join('\n')}\n\n` +
    `global options:\n` +
    Object.entries(GLOBAL_OPTIONS)
      .map(([n, o]) => `  ${`${o.short ? `-${o.short}, ` : '    '}--${n}${o.type === 'string' ? ` ${o.value}` : ''}`.padEnd(24)} ${o.help}`)
      .join('\n') +
    `\n\nenvironment: SCOPEGATE_URL, AUTHZ_ADMIN_TOKEN; SCOPEGATE_ORG and SCOPEGATE_PROJECT default --org/--project.\n` +
    `examples:\n` +
    `  scopegate tenant create --name 'Acme Corp' --slug acme\n` +
    `  scopegate actor create --org tenant_… --project project_… --name sensor-1 --scope scope_…\n` +
    `  scopegate evaluate --subject user_… --scope scope_… --action read --resource-type doc --explain\n\n` +
    `Run 'scopegate <command> --help' for a command's options. Exit codes: 0 ok, 1 API or network error, 2 usage error.\n`
  );
}

function shortUsage(err: UsageError): string {
  if (err.command) return `usage: ${synopsis(err.command)}\nRun 'scopegate ${err.command.name} --help' for details.\n`;
  if (err.group) return groupHelp(err.group);
  return `usage: scopegate <command> [options]\ncommands: ${groups.join(', ')}\nRun 'scopegate --help' for the list of commands.\n`;
}

// ---------------------------------------------------------------------------------------------------------
// Entry point

export interface RunIO {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Record<string, string | undefined>;
  fetch?: typeof fetch;
}

const VALUE_GLOBALS = new Set(['--url', '--token']);

/** Runs one CLI invocation; resolves to the exit code. (`audit tail --follow` only returns on error.) */
export async function run(argv: string[], io: RunIO): Promise<number> {
  // The command: the first word that is not an option (skipping the values of --url/--token), and the word
  // right after it when that names a subcommand.
  const words: Array<{ word: string; index: number }> = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a.startsWith('-')) {
      if (VALUE_GLOBALS.has(a)) i++;
      continue;
    }
    words.push({ word: a, index: i });
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('-')) words.push({ word: next, index: i + 1 });
    break;
  }
  const wantsHelp = argv.some((a) => a === '--help' || a === '-h');
  const fail = (err: UsageError): number => {
    io.stderr(`error: ${err.message}\n${shortUsage(err)}`);
    return 2;
  };

  const [w1, w2] = words;
  if (!w1 || w1.word === 'help') {
    const topic = w1 ? w2?.word : undefined;
    if (topic && groups.includes(topic)) {
      io.stdout(groupHelp(topic));
      return 0;
    }
    if (wantsHelp || w1) {
      io.stdout(mainHelp());
      return 0;
    }
    if (argv.includes('--version')) {
      io.stdout(`${version()}\n`);
      return 0;
    }
    io.stderr(`error: missing command\n${shortUsage(new UsageError(''))}`);
    return 2;
  }
  const command =
    (w2 && commands.find((c) => c.name === `${w1.word} ${w2.word}`)) ?? commands.find((c) => c.name === w1.word);
  if (!command) {
    if (groups.includes(w1.word)) {
      if (wantsHelp && (!w2 || w2.word.startsWith('-'))) {
        io.stdout(groupHelp(w1.word));
        return 0;
      }
      return fail(new UsageError(w2 ? `unknown command '${w1.word} ${w2.word}'` : `'${w1.word}' needs a subcommand`, undefined, w1.word));
    }
    return fail(new UsageError(`unknown command '${w1.word}'`));
  }
  if (wantsHelp) {
    io.stdout(commandHelp(command));
    return 0;
  }
  const used = command.name.includes(' ') ? [w1.index, w2!.index] : [w1.index];
  const rest = argv.filter((_, i) => !used.includes(i));

  let values: Values;
  let positionals: string[];
  try {
    const options = Object.fromEntries(
      Object.entries({ ...command.options, ...GLOBAL_OPTIONS }).map(([n, o]) => [n, { type: o.type, ...(o.short ? { short: o.short } : {}) }]),
    ) as Record<string, { type: 'string' | 'boolean'; short?: string }>;
    const parsed = parseArgs({ args: rest, options, strict: true, allowPositionals: true });
    values = parsed.values as Values;
    positionals = parsed.positionals;
  } catch (e) {
    return fail(new UsageError((e as Error).message.replace(/\. To specify a positional argument.*$/s, ''), command));
  }
  if (positionals.length > (command.maxPositionals ?? 0)) {
    return fail(new UsageError(`unexpected argument '${positionals[command.maxPositionals ?? 0]}'`, command));
  }

  const url = (typeof values.url === 'string' ? values.url : undefined) ?? io.env.SCOPEGATE_URL ?? DEFAULT_URL;
  const token = (typeof values.token === 'string' ? values.token : undefined) ?? io.env.AUTHZ_ADMIN_TOKEN ?? '';
  if (!/^https?:\/\//.test(url)) return fail(new UsageError(`--url must start with http:// or https:// (got '${url}')`, command));
  const baseFetch = io.fetch ?? fetch;
  const client = new ScopeGateClient({
    baseUrl: url,
    token,
    // Name the cause of network failures (ECONNREFUSED, ENOTFOUND, timeout) instead of a bare "fetch failed".
    fetch: async (input, init) => {
      try {
        return await baseFetch(input, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      } catch (e) {
        const err = e as Error & { cause?: { code?: string; message?: string } };
        if (err.name === 'TimeoutError') throw new Error(`no answer within ${REQUEST_TIMEOUT_MS / 1000} s`);
        throw new Error(err.cause?.message ?? err.cause?.code ?? err.message);
      }
    },
  });
  const ctx: Ctx = { client, url, token, json: values.json === true, values, positionals, command, out: io.stdout };
  try {
    await command.run(ctx);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) return fail(e);
    if (e instanceof ScopeGateApiError) {
      if (e.code === 'NETWORK_ERROR') {
        io.stderr(`error: cannot reach the ScopeGate sidecar at ${url}: ${stripPrefix(e.message, `Cannot reach ${url.replace(/\/+$/, '')}: `)}\nIs it running? Set the address with --url or SCOPEGATE_URL.\n`);
        return 1;
      }
      let s = `error: ${e.code}: ${e.message}\n`;
      for (const d of e.details) {
        const extra = Object.entries(d).filter(([k]) => k !== 'path' && k !== 'message');
        s += `  - ${d.path ? `${d.path}: ` : ''}${d.message}${extra.length ? ` (${extra.map(([k, v]) => `${k}: ${cell(v)}`).join(', ')})` : ''}\n`;
      }
      if (e.code === 'STILL_REFERENCED' && 'cascade' in command.options) s += 'Pass --cascade to delete the dependents too.\n';
      if (e.code === 'UNAUTHENTICATED' && !token) s += 'No admin token given: pass --token or set AUTHZ_ADMIN_TOKEN.\n';
      io.stderr(s);
      return 1;
    }
    io.stderr(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

function stripPrefix(s: string, prefix: string): string {
  return s.startsWith(prefix) ? s.slice(prefix.length) : s;
}

function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (invokedDirectly) {
  // Piping into `head` closes stdout early: that is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  const code = await run(process.argv.slice(2), {
    stdout: (t) => void process.stdout.write(t),
    stderr: (t) => void process.stderr.write(t),
    env: process.env,
  });
  process.exitCode = code;
}
