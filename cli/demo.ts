import { ScopeGateClient } from '../client/index.ts';

export interface DemoActor {
  tenant: string;
  actorId: string;
  password: string;
  /** The topic as this actor writes it (`<app>/<rest>`). */
  topic: string;
}

export interface DemoResult {
  actors: DemoActor[];
  /** Ready-to-paste shell commands that show the isolation. */
  commands: string[];
  /** True when the demo tenants already existed (a durable store) and were reused with fresh tokens. */
  reused: boolean;
}

/**
 * Sets up two tenants (Acme Corp and Beta Corp), each with a workspace, a project, an access scope, an open
 * app `demo` and two actors (a subscriber and a publisher) with JWTs, and returns mosquitto_sub /
 * mosquitto_pub commands: Acme's subscriber hears Acme's publisher on `demo/chat/messages`, never Beta's,
 * although both write the very same topic.
 *
 * Every part is looked up by its slug or name first and only created when missing, so a fixed `suffix`
 * against a durable store (Redis) reuses the demo of an earlier run instead of piling up new tenants; only
 * the tokens are new each time.
 */
export async function setupDemo(client: ScopeGateClient, options: { mqttHost?: string; mqttPort?: number; ttlSeconds?: number; suffix?: string } = {}): Promise<DemoResult> {
  const host = options.mqttHost ?? '127.0.0.1';
  const port = options.mqttPort ?? 1883;
  const suffix = options.suffix ?? Math.random().toString(36).slice(2, 7);
  const actors: DemoActor[] = [];
  let reused = true;
  const found = <T>(item: T | undefined): T | undefined => {
    if (item === undefined) reused = false;
    return item;
  };
  for (const name of ['Acme Corp', 'Beta Corp']) {
    const slug = `${name.split(' ')[0]!.toLowerCase()}-${suffix}`;
    const tenant = found((await client.tenants.list({ slug })).data[0]) ?? (await client.tenants.create({ name, slug, kind: 'standard' }));
    const ws = found((await client.workspaces.list({ tenantId: tenant.id })).data[0]) ?? (await client.workspaces.create({ tenantId: tenant.id, name: 'Main' }));
    const project =
      found((await client.projects.list({ tenantId: tenant.id, workspaceId: ws.id })).data[0]) ??
      (await client.projects.create({ tenantId: tenant.id, workspaceId: ws.id, name: 'Chat' }));
    const p = client.project(tenant.id, project.id);
    const scope = found((await p.scopes.list()).data.find((s) => s.slug === 'customers')) ?? (await p.scopes.create({ slug: 'customers', name: 'Customers' }));
    const app = found((await p.apps.list()).data.find((a) => a.slug === 'demo')) ?? (await p.apps.create({ slug: 'demo', name: 'Demo', mode: 'open' }));
    const existingActors = (await p.actors.list()).data;
    const granted = new Set((await p.apps.grants(app.appId)).data.map((g) => g.actorId));
    for (const role of ['sub', 'pub']) {
      const actorName = `${slug}-${role}`;
      const actor =
        found(existingActors.find((a) => a.name === actorName)) ??
        (await p.actors.create({ name: actorName, kind: 'device', accessScopeId: scope.accessScopeId }));
      if (!granted.has(actor.actorId)) await p.apps.grant(app.appId, actor.actorId);
      const token = await p.actors.issueToken(actor.actorId, { ttlSeconds: options.ttlSeconds ?? 86_400 });
      actors.push({ tenant: slug, actorId: actor.actorId, password: token.token, topic: 'demo/chat/messages' });
    }
  }
  const [acmeSub, acmePub, betaSub, betaPub] = actors as [DemoActor, DemoActor, DemoActor, DemoActor];
  const conn = (a: DemoActor) => `-h ${host} -p ${port} -u '${a.actorId}' -P '${a.password}'`;
  const commands = [
    `# 1. Acme's subscriber and Beta's subscriber (leave both running, one terminal each):`,
    `mosquitto_sub ${conn(acmeSub)} -i acme-sub -t '${acmeSub.topic}' -v`,
    `mosquitto_sub ${conn(betaSub)} -i beta-sub -t '${betaSub.topic}' -v`,
    `# 2. Acme's publisher: only Acme's subscriber prints the message`,
    `mosquitto_pub ${conn(acmePub)} -i acme-pub -t '${acmePub.topic}' -m 'hello from acme'`,
    `# 3. Beta's publisher writes the very same topic: only Beta's subscriber prints it`,
    `mosquitto_pub ${conn(betaPub)} -i beta-pub -t '${betaPub.topic}' -m 'hello from beta'`,
  ];
  return { actors, commands, reused };
}
