/**
 * Seed 000's objects inside one organization's project (--org --project): access scopes (`scope`), `app`s and
 * their grants, `actor`s, and their credentials (`token`, `secret`) with a ready mosquitto_pub line.
 */
import type { ScopeGateClient } from '../../client/index.ts';
import type { RequestBody as Input } from '../../authz-sidecar/service/inputs.ts';
import { shellQuote, record } from '../format.ts';
import { ACTOR_FLAG, asSent, idArg, need, nullable, num, OPT, org, projectOpts, str, UsageError, type Command, type Ctx } from '../framework/command.ts';
import { print, printDeleted, printPage, showOne } from '../framework/output.ts';
import { readCommands } from '../framework/resource-commands.ts';

export const messagingCommands: Command[] = [
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
      showOne(ctx, 'scope', await org(ctx).scopes.create(asSent<Input<'accessScopeCreate'>>(body)));
    },
  },
  {
    name: 'scope move',
    summary: 'move an access scope, with its subtree, under another access scope of the project (or `none`: the project level); its actors get the new topic namespace',
    args: '<scope-id>',
    maxPositionals: 1,
    options: { ...projectOpts, parent: { type: 'string', value: '<scope-id|slug|none>', help: 'new parent: an access scope id, its slug when unambiguous in the project, or none for the project level', required: true } },
    async run(ctx) {
      const parent = await accessScopeIdOf(ctx, need(ctx, 'parent'));
      showOne(ctx, 'scope', await org(ctx).scopes.move(idArg(ctx), parent));
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
      showOne(ctx, 'app', await org(ctx).apps.create(asSent<Input<'appCreate'>>(body)));
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
      scope: { type: 'string', value: '<scope-id|slug>', help: 'access scope it lives in: its id, or its slug when unambiguous in the project (default: none)' },
      kind: { type: 'string', value: '<device|agent|service>', help: 'device (the default), agent (an AI agent) or service; the name never sets it: `--name user-alice` is still a device unless --kind says otherwise' },
    },
    async run(ctx) {
      const scope = str(ctx, 'scope');
      const body = { name: str(ctx, 'name'), kind: str(ctx, 'kind'), accessScopeId: scope === undefined ? null : await accessScopeIdOf(ctx, scope) };
      showOne(ctx, 'actor', await org(ctx).actors.create(asSent<Input<'actorCreate'>>(body)));
    },
  },
  {
    name: 'actor move',
    summary: 'move an actor to another access scope (or `none`)',
    args: '<actor-id>',
    maxPositionals: 1,
    options: { ...projectOpts, actor: ACTOR_FLAG, scope: { type: 'string', value: '<scope-id|slug|none>', help: 'target access scope: its id, its slug when unambiguous in the project, or none', required: true } },
    async run(ctx) {
      const scope = need(ctx, 'scope');
      showOne(ctx, 'actor', await org(ctx).actors.update(idArg(ctx, 'actor'), asSent<Input<'actorPatch'>>({ accessScopeId: await accessScopeIdOf(ctx, scope) })));
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
      showOne(ctx, 'actor', await org(ctx).actors.update(idArg(ctx, 'actor'), asSent<Input<'actorPatch'>>({ name: str(ctx, 'name') })));
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
      'on-behalf-of': { type: 'string', value: '<subject-id>', help: 'a delegated token (RFC 8693: sub = this principal, act.sub = the actor); needs a delegation grant (`delegations grant`) and never outlives it' },
      topic: { type: 'string', value: '<topic>', help: "topic for the printed command (default: '<first granted app>/hello')" },
      'mqtt-host': OPT.mqttHost,
      'mqtt-port': OPT.mqttPort,
    },
    async run(ctx) {
      const api = org(ctx);
      const actorId = idArg(ctx, 'actor');
      const ttl = num(str(ctx, 'ttl'));
      const principal = str(ctx, 'on-behalf-of');
      const body = { ...(ttl === undefined ? {} : { ttlSeconds: ttl }), ...(principal === undefined ? {} : { onBehalfOf: { subjectId: principal } }) };
      const res = await api.actors.issueToken(actorId, asSent<Input<'tokenCreate'>>(body));
      if (ctx.json) return print(ctx, res, () => '');
      const topic = str(ctx, 'topic') ?? (await guessTopic(api, actorId));
      const delegated = res.onBehalfOf ? { onBehalfOf: res.onBehalfOf, delegation: res.delegationId } : {};
      ctx.out(
        `${record({ actor: res.actorId, ...delegated, expires: res.expiresAt, username: res.mqtt.username, token: res.token })}\n` +
          `# publish as this actor${res.onBehalfOf ? ' acting for its principal (topics both may use)' : ''}:\n${mosquitto(ctx, 'pub', res.mqtt.username, res.mqtt.password, topic)}\n`,
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

];

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

/**
 * An access scope named on the command line: `none` (no scope), an id (`scope_…`, passed on for the server to
 * judge), or a slug, looked up among the project's access scopes and accepted only when exactly one has it
 * (nested scopes may repeat a slug under different parents).
 */
async function accessScopeIdOf(ctx: Ctx, value: string): Promise<string | null> {
  if (value === 'none' || value.startsWith('scope_')) return nullable(value) ?? null;
  const matches = (await org(ctx).scopes.list({ limit: 1000 })).data.filter((s) => s.slug === value);
  if (matches.length === 1) return matches[0]!.accessScopeId;
  if (matches.length === 0) throw new UsageError(`no access scope with slug '${value}' in this project (pass its id, scope_…)`, ctx.command);
  throw new UsageError(`slug '${value}' names ${matches.length} access scopes in this project (${matches.map((m) => m.accessScopeId).join(', ')}): pass the id`, ctx.command);
}
