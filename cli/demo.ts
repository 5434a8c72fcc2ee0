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
}

/**
 * Sets up two tenants (Acme Corp and Beta Corp), each with a workspace, a project, an access scope, an open
 * app `demo` and two actors (a subscriber and a publisher) with JWTs, and returns mosquitto_sub /
 * mosquitto_pub commands: Acme's subscriber hears Acme's publisher on `demo/chat/messages`, never Beta's,
 * although both write the very same topic.
 */
export async function setupDemo(client: ScopeGateClient, options: { mqttHost?: string; mqttPort?: number; ttlSeconds?: number; suffix?: string } = {}): Promise<DemoResult> {
  const host = options.mqttHost ?? '127.0.0.1';
  const port = options.mqttPort ?? 1883;
  const suffix = options.suffix ?? Math.random().toString(36).slice(2, 7);
  const actors: DemoActor[] = [];
  for (const name of ['Acme Corp', 'Beta Corp']) {
    const slug = `${name.split(' ')[0]!.toLowerCase()}-${suffix}`;
    const tenant = await client.tenants.create({ name, slug, kind: 'standard' });
    const ws = await client.workspaces.create({ tenantId: tenant.id, name: 'Main' });
    const project = await client.projects.create({ tenantId: tenant.id, workspaceId: ws.id, name: 'Chat' });
    const p = client.project(tenant.id, project.id);
    const scope = await p.scopes.create({ slug: 'customers', name: 'Customers' });
    const app = await p.apps.create({ slug: 'demo', name: 'Demo', mode: 'open' });
    for (const role of ['sub', 'pub']) {
      const actor = await p.actors.create({ name: `${slug}-${role}`, kind: 'device', accessScopeId: scope.accessScopeId });
      await p.apps.grant(app.appId, actor.actorId);
      const token = await p.actors.issueToken(actor.actorId, { ttlSeconds: options.ttlSeconds ?? 86_400 });
      actors.push({ tenant: slug, actorId: actor.actorId, password: token.token, topic: 'demo/chat/messages' });
    }
  }
  const [acmeSub, acmePub, , betaPub] = actors as [DemoActor, DemoActor, DemoActor, DemoActor];
  const conn = (a: DemoActor) => `-h ${host} -p ${port} -u '${a.actorId}' -P '${a.password}'`;
  const commands = [
    `# 1. Acme's subscriber (leave it running):`,
    `mosquitto_sub ${conn(acmeSub)} -i acme-sub -t '${acmeSub.topic}' -v`,
    `# 2. Acme's publisher: the subscriber prints the message`,
    `mosquitto_pub ${conn(acmePub)} -i acme-pub -t '${acmePub.topic}' -m 'hello from acme'`,
    `# 3. Beta's publisher writes the same topic: Acme's subscriber prints nothing`,
    `mosquitto_pub ${conn(betaPub)} -i beta-pub -t '${betaPub.topic}' -m 'hello from beta'`,
  ];
  return { actors, commands };
}
