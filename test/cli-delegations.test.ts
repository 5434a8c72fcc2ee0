/**
 * `scopegate delegations grant|list|revoke` and `token issue --on-behalf-of` end to end: the real launcher
 * (bin/scopegate.mjs) as a child process against a real sidecar + broker. A user grants an agent with its
 * identity provider's JWT as --token, an admin issues the delegated token, a real mqtt.js client connects with it
 * (the intersection applies), and the user's revoke through the CLI closes the session.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from './helpers/cli.ts';
import { startIdentityProvider, type TestIdentityProvider } from './helpers/identity-provider.ts';
import { connackCode, connect } from './helpers/mqtt.ts';
import { allowTopics, createActor, createProject, startSystem, type TestSystem } from './helpers/system.ts';


let idp: TestIdentityProvider;
let sys: TestSystem;
let p: string[];
let agent: Awaited<ReturnType<typeof createActor>>;
let user: { subjectId: string };
let other: { subjectId: string };


/** Runs the CLI from outside the repo with the admin token unless `token` is given; never rejects. */
const cli = (args: string[], token = sys.side.adminToken): Promise<CliResult> => runCli(args, { url: sys.side.url, token });

beforeAll(async () => {
  idp = await startIdentityProvider();
  sys = await startSystem({ sidecar: { trustedIssuer: idp.config } });
  const project = await createProject(sys.sg, 'cli-dlg');
  p = ['--org', project.orgId, '--project', project.projectId];
  const scope = (await project.api.scopes.create({ slug: 'acme', name: 'Acme' })).accessScopeId;
  const app = await project.api.apps.create({ slug: 'agents', name: 'Agents', mode: 'open' });
  agent = await createActor(project.api, 'assistant', scope, [app.appId]);
  user = await sys.side.ok('POST', '/v1/users', { kindeId: 'kp_cli_user', email: 'user@cli.example', defaultTenantId: project.orgId });
  await allowTopics(sys.side, user.subjectId, scope, [
    ['publish', 'agents/tasks/#'],
    ['subscribe', 'agents/tasks/#'],
  ]);
  other = await sys.side.ok('POST', '/v1/users', { kindeId: 'kp_cli_other', email: 'other@cli.example', defaultTenantId: project.orgId });
  await allowTopics(sys.side, other.subjectId, scope, []);
}, 30_000);
afterAll(async () => {
  await sys?.close();
  await idp?.close();
});

describe('scopegate delegations', () => {
  it('a user grants, lists and revokes its own grant; the delegated token works over MQTT until then', async () => {
    const userToken = await idp.token('kp_cli_user');
    const granted = await cli(['delegations', 'grant', agent.actorId, ...p, '--subject', user.subjectId, '--expires', '600', '--json'], userToken);
    expect(granted).toMatchObject({ code: 0, stderr: '' });
    const grant = JSON.parse(granted.stdout);
    expect(grant).toMatchObject({ actorId: agent.actorId, principalSubjectId: user.subjectId, createdBy: user.subjectId });

    // An admin's grant for another user: the user's list shows only its own; the admin's shows both (a table).
    await cli(['delegations', 'grant', ...p, '--actor', agent.actorId, '--subject', other.subjectId]);
    const mine = await cli(['delegations', 'list', agent.actorId, ...p], userToken);
    expect(mine.code).toBe(0);
    expect(mine.stdout).toMatch(/^ID\s+AGENT\s+ON BEHALF OF\s+EXPIRES\s+CREATED BY/);
    expect(mine.stdout).toContain(grant.id);
    expect(mine.stdout).not.toContain(other.subjectId);
    const all = await cli(['delegations', 'list', agent.actorId, ...p, '--json']);
    expect(JSON.parse(all.stdout).data.map((d: { principalSubjectId: string }) => d.principalSubjectId).sort()).toEqual([user.subjectId, other.subjectId].sort());

    // The delegated token (admin): sub = the user, act.sub = the agent; printed with a mosquitto_pub line.
    const issued = await cli(['token', 'issue', agent.actorId, ...p, '--on-behalf-of', user.subjectId, '--topic', 'agents/tasks/1']);
    expect(issued.code).toBe(0);
    expect(issued.stdout).toMatch(new RegExp(`onBehalfOf:\\s+${user.subjectId}`));
    expect(issued.stdout).toContain(grant.id);
    const token = /^token:\s+(\S+)$/m.exec(issued.stdout)![1]!;
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());
    expect(claims).toMatchObject({ sub: user.subjectId, act: { sub: agent.actorId } });
    expect(issued.stdout).toMatch(new RegExp(`mosquitto_pub .* -u ${agent.actorId} -P ${token} -t agents/tasks/1`));

    const c = await connect(sys.url, agent.actorId, token);
    try {
      // The intersection: the user's agents/tasks/# yes, the agent's wider agents/# no.
      expect(await c.subscribe(['agents/tasks/#', 'agents/#'])).toEqual([0, 128]);
      const revoked = await cli(['delegations', 'revoke', grant.id, ...p, '--actor', agent.actorId], userToken);
      expect(revoked.code).toBe(0);
      expect(revoked.stdout).toMatch(new RegExp(`delegation\\s+${grant.id}`));
      await c.closed;
      expect(await connackCode(sys.url, agent.actorId, token)).toBe(5);
    } finally {
      await c.end();
    }
  });

  it('refusals are clear: another subject (403), another principal\'s grant (404), no grant (403), usage (exit 2)', async () => {
    const userToken = await idp.token('kp_cli_user');
    const forOther = await cli(['delegations', 'grant', agent.actorId, ...p, '--subject', other.subjectId], userToken);
    expect(forOther.code).toBe(1);
    expect(forOther.stderr).toContain('FORBIDDEN');
    const othersGrant = (await sys.side.ok('GET', `/v1/organizations/${p[1]}/projects/${p[3]}/actors/${agent.actorId}/delegations`)).data.find(
      (d: { principalSubjectId: string }) => d.principalSubjectId === other.subjectId,
    );
    const notMine = await cli(['delegations', 'revoke', othersGrant.id, ...p, '--actor', agent.actorId], userToken);
    expect(notMine.code).toBe(1);
    expect(notMine.stderr).toContain('NOT_FOUND');
    const noGrant = await cli(['token', 'issue', agent.actorId, ...p, '--on-behalf-of', user.subjectId]);
    expect(noGrant.code).toBe(1);
    expect(noGrant.stderr).toContain('FORBIDDEN');
    const usage = await cli(['delegations', 'revoke', ...p, '--actor', agent.actorId]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('delegation-id');
  });
});
