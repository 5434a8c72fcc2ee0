/**
 * The `scopegate` CLI end to end: a real sidecar in this process, the real launcher (bin/scopegate.mjs → the bundled
 * cli/main.ts) as a child process, run from another working directory. Checks the objects the CLI creates
 * through the API, the table and --json outputs, and the exit codes (0 ok, 1 API/network error, 2 usage).
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_BIN, cliEnv, runCli, type CliResult } from './helpers/cli.ts';
import { ScopeGateClient } from '../client/index.ts';
import { startSidecar, type TestSidecar } from './helpers/sidecar.ts';


let s: TestSidecar;
let sg: ScopeGateClient;


/** Runs the CLI from a directory outside the repo; never rejects, reports the exit code. */
const cli = (args: string[], env: Record<string, string> = {}): Promise<CliResult> => runCli(args, { url: s.url, token: s.adminToken, env });

/** Runs the CLI with --json and parses stdout; fails the test on a non-zero exit. */
async function cliJson<T = any>(args: string[]): Promise<T> {
  const r = await cli([...args, '--json']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as T;
}

const connect = (username: string, password: string) =>
  fetch(`${s.url}/v1/broker/connect`, {
    method: 'POST',
    headers: { authorization: `Bearer ${s.brokerToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ clientId: 'cli-test', username, password, remoteAddress: '127.0.0.1' }),
  }).then((r) => r.json() as Promise<any>);

beforeAll(async () => {
  s = await startSidecar();
  sg = new ScopeGateClient({ baseUrl: s.url, token: s.adminToken });
});
afterAll(() => s?.close());

describe('scopegate CLI', () => {
  // Shared by the onboarding steps below (they run in order).
  let orgId: string;
  let projectId: string;

  it('onboards a tenant: tenant → workspace → project → scope → app → actor → grant → token', async () => {
    const tenant = await cliJson(['tenant', 'create', '--name', 'Cli Corp', '--slug', 'cli-corp']);
    expect(tenant).toMatchObject({ name: 'Cli Corp', slug: 'cli-corp', kind: 'standard' });
    orgId = tenant.id;
    const ws = await cliJson(['workspace', 'create', '--tenant', orgId, '--name', 'Main']);
    const project = await cliJson(['project', 'create', '--tenant', orgId, '--workspace', ws.id, '--name', 'Fleet', '--slug', 'fleet']);
    projectId = project.id;
    const p = ['--org', orgId, '--project', projectId];
    const scope = await cliJson(['scope', 'create', ...p, '--slug', 'customer-a', '--name', 'Customer A']);
    expect(scope.accessScopeId).toMatch(/^scope_/);
    const app = await cliJson(['app', 'create', ...p, '--slug', 'telemetry', '--name', 'Telemetry', '--mode', 'open']);
    const actor = await cliJson(['actor', 'create', ...p, '--name', 'truck-7', '--scope', scope.accessScopeId, '--kind', 'device']);
    await cliJson(['app', 'grant', ...p, '--app', app.appId, '--actor', actor.actorId]);
    const token = await cliJson(['token', 'issue', ...p, '--actor', actor.actorId, '--ttl', '600']);
    expect(token).toMatchObject({ actorId: actor.actorId, mqtt: { username: actor.actorId } });

    // Everything is there through the API …
    expect((await sg.tenants.get(orgId)).slug).toBe('cli-corp');
    expect((await sg.workspaces.get(ws.id)).tenantId).toBe(orgId);
    expect((await sg.projects.get(projectId)).workspaceId).toBe(ws.id);
    const api = sg.project(orgId, projectId);
    expect((await api.scopes.get(scope.accessScopeId)).slug).toBe('customer-a');
    expect((await api.actors.get(actor.actorId)).accessScopeId).toBe(scope.accessScopeId);
    expect((await api.apps.grants(app.appId)).data.map((g) => g.actorId)).toEqual([actor.actorId]);
    // … and the token is a working MQTT password, namespaced under the scope.
    const decision = await connect(actor.actorId, token.token);
    expect(decision).toMatchObject({ decision: 'allowed', session: { namespace: 'customer-a' } });
    expect(decision.session.apps.map((a: { slug: string }) => a.slug)).toEqual(['telemetry']);
  });

  it('prints tables with the created names, and a ready mosquitto_pub line for tokens', async () => {
    const tenants = await cli(['tenant', 'list']);
    expect(tenants.code).toBe(0);
    expect(tenants.stdout).toMatch(/^ID\s+SLUG\s+NAME/);
    expect(tenants.stdout).toContain('Cli Corp');
    expect(tenants.stdout).toContain('cli-corp');

    const p = ['--org', orgId, '--project', projectId];
    const actors = await cli(['actor', 'list', ...p]);
    expect(actors.stdout).toContain('truck-7');
    const [actor] = (await sg.project(orgId, projectId).actors.list()).data;
    const token = await cli(['token', 'issue', ...p, actor!.actorId]);
    expect(token.code).toBe(0);
    expect(token.stdout).toMatch(new RegExp(`mosquitto_pub -h 127\\.0\\.0\\.1 -p 1883 -u ${actor!.actorId} -P ey\\S+ -t telemetry/hello`));

    const moved = await cli(['actor', 'move', ...p, '--actor', actor!.actorId, '--scope', 'none', '--json']);
    expect(JSON.parse(moved.stdout).accessScopeId).toBeNull();
    const disabled = await cli(['actor', 'disable', ...p, '--actor', actor!.actorId]);
    expect(disabled.stdout).toMatch(/truck-7\s+device\s+-\s+true/);
  });

  it('scope move moves an access scope under another (by slug) or to the project level; audit tail filters who/what/since', async () => {
    const p = ['--org', orgId, '--project', projectId];
    const api = sg.project(orgId, projectId);
    const parent = await api.scopes.create({ slug: 'fleet-north', name: 'North' });
    const child = await api.scopes.create({ slug: 'depot', name: 'Depot' });
    const moved = await cliJson(['scope', 'move', ...p, child.accessScopeId, '--parent', 'fleet-north']);
    expect(moved).toMatchObject({ accessScopeId: child.accessScopeId, parentId: parent.accessScopeId });
    const cycle = await cli(['scope', 'move', ...p, parent.accessScopeId, '--parent', child.accessScopeId]);
    expect(cycle.code).toBe(1);
    expect(cycle.stderr).toContain('SCOPE_CYCLE');
    const back = await cli(['scope', 'move', ...p, child.accessScopeId, '--parent', 'none']);
    expect(back.code).toBe(0);
    expect(back.stdout).toMatch(new RegExp(`${child.accessScopeId}\\s+depot\\s+Depot\\s+scope_`));

    const tail = await cliJson<{ data: Array<{ action: string; principal: string; after: Array<{ id: string; parentId: string }> }> }>(['audit', 'tail', '--what', 'access_scope.move', '--who', 'admin', '--since', '10m']);
    expect(tail.data.map((e) => e.after[0]!.parentId)).toEqual([parent.accessScopeId, (await sg.projects.get(projectId)).scopeId]);
    expect((await cliJson<{ data: unknown[] }>(['audit', 'tail', '--what', 'access_scope.move', '--until', '2000-01-01T00:00:00Z'])).data).toEqual([]);
    const bad = await cli(['audit', 'tail', '--since', 'last tuesday']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('query.since');
  });

  it('evaluate prints ALLOWED / DENIED for a seeded role and permission, --explain adds the trace', async () => {
    const tenant = await sg.tenants.create({ name: 'Eval Corp', slug: 'eval-corp' });
    const role = await sg.roles.create({ scopeId: tenant.scopeId, name: 'Reader' });
    const perm = await sg.permissions.create({ scopeId: tenant.scopeId, action: 'read', resourceType: 'document', resourcePattern: 'docs/*' });
    await sg.rolePermissions.create({ roleId: role.id, permissionId: perm.id });
    const user = await sg.users.create({ kindeId: 'kp_cli_eval', email: 'eval@example.com', defaultTenantId: tenant.id });
    const m = await sg.memberships.create({ subjectId: String(user.subjectId), scopeId: tenant.scopeId });
    await sg.roleAssignments.create({ roleId: role.id, membershipId: m.id });

    const ask = (action: string, resourceId: string, ...extra: string[]) =>
      cli(['evaluate', '--subject', String(user.subjectId), '--scope', tenant.scopeId, '--action', action, '--resource-type', 'document', '--resource-id', resourceId, ...extra]);
    const allowed = await ask('read', 'docs/readme');
    expect(allowed.code).toBe(0);
    expect(allowed.stdout).toMatch(/^ALLOWED\n/);
    expect(allowed.stdout).toContain('Reader');
    const denied = await ask('write', 'docs/readme', '--explain');
    expect(denied.stdout).toMatch(/^DENIED \(no_matching_permission\)/);
    expect(denied.stdout).toContain('action_mismatch');
    const outside = await ask('read', 'secrets/x', '--json');
    expect(JSON.parse(outside.stdout)).toMatchObject({ decision: 'DENIED', reason: 'no_matching_permission' });
    // A user id and a tenant id are accepted where a subject and a scope are meant.
    const byIds = await cli(['evaluate', '--subject', user.id, '--scope', tenant.id, '--action', 'read', '--resource-type', 'document', '--resource-id', 'docs/a']);
    expect(byIds.stdout).toMatch(/^ALLOWED/);
  });

  it('creates roles, permissions and memberships from the CLI, which then decide', async () => {
    const tenant = await cliJson(['tenant', 'create', '--name', 'Rbac Corp', '--slug', 'rbac-corp']);
    const role = await cliJson(['role', 'create', '--scope', tenant.scopeId, '--name', 'Publisher']);
    const perm = await cliJson(['permission', 'create', '--scope', tenant.scopeId, '--action', 'publish', '--resource-type', 'topic', '--pattern', 'news/#']);
    await cliJson(['role-permission', 'add', '--role', role.id, '--permission', perm.id]);
    const user = await cliJson(['user', 'create', '--kinde-id', 'kp_cli_rbac', '--email', 'rbac@example.com', '--tenant', tenant.id]);
    const m = await cliJson(['membership', 'create', '--subject', user.subjectId, '--scope', tenant.scopeId]);
    await cliJson(['role', 'assign', '--role', role.id, '--membership', m.id]);
    const d = await sg.evaluate({ actor: { subjectId: user.subjectId, subjectType: 'user' }, scopeId: tenant.scopeId, action: 'publish', resource: { resourceType: 'topic', resourceId: 'news/today' } });
    expect(d.decision).toBe('ALLOWED');
  });

  it('limits set / get: a tenant narrows its project; evaluate --payload-bytes names the limit that refused', async () => {
    const tenant = await sg.tenants.create({ name: 'Limited Corp', slug: 'limited-corp' });
    const ws = await sg.workspaces.create({ tenantId: tenant.id, name: 'Main' });
    const project = await sg.projects.create({ tenantId: tenant.id, workspaceId: ws.id, name: 'Fleet' });
    await cliJson(['limits', 'set', tenant.id, '--limits', '{"maxPayloadBytes":1000,"maxSessions":5}']);
    await cliJson(['limits', 'set', project.id, '--limits', '{"maxPayloadBytes":4000}']);
    const at = await cliJson(['limits', 'get', project.id]);
    expect(at.effective.sources.maxPayloadBytes).toEqual({ value: 1000, scopeId: tenant.scopeId });
    const table = await cli(['limits', 'get', project.id]);
    expect(table.stdout).toMatch(/maxPayloadBytes\s+1000\s+scope_tenant_/);
    const bad = await cli(['limits', 'set', tenant.id, '--limits', '{"maxSessions":-1}']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('VALIDATION_FAILED');
    const user = await sg.users.create({ kindeId: 'kp_cli_limits', email: 'limits@example.com', defaultTenantId: tenant.id });
    const refused = await cli(['evaluate', '--subject', user.id, '--scope', project.id, '--action', 'publish', '--resource-type', 'topic', '--resource-id', 'a/b', '--payload-bytes', '2000']);
    expect(refused.stdout).toContain('DENIED (limit_exceeded)');
    expect(refused.stdout).toContain(`limit: maxPayloadBytes = 1000, set at ${tenant.scopeId}`);
  }, 90_000);

  it('reports API errors on stderr with exit 1: duplicate slug (409), validation (400), wrong token (401)', async () => {
    const dup = await cli(['tenant', 'create', '--name', 'Again', '--slug', 'cli-corp']);
    expect(dup.code).toBe(1);
    expect(dup.stdout).toBe('');
    expect(dup.stderr).toMatch(/^error: ALREADY_EXISTS: /);

    const noName = await cli(['tenant', 'create', '--slug', 'nameless']);
    expect(noName.code).toBe(1);
    expect(noName.stderr).toContain('error: VALIDATION_FAILED');
    expect(noName.stderr).toContain('body.name');

    const badToken = await cli(['tenant', 'list'], { AUTHZ_ADMIN_TOKEN: 'not-the-token' });
    expect(badToken.code).toBe(1);
    expect(badToken.stderr).toMatch(/^error: UNAUTHENTICATED: /);
  });

  it('exits 2 with a short usage on usage errors, 0 on --help', async () => {
    const unknown = await cli(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");
    expect(unknown.stderr).toContain('usage:');

    const badSub = await cli(['tenant', 'explode']);
    expect(badSub.code).toBe(2);
    expect(badSub.stderr).toContain('scopegate tenant create');

    const badFlag = await cli(['tenant', 'list', '--colour']);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toContain('--colour');

    const noOrg = await cli(['actor', 'list', '--project', 'project_x']);
    expect(noOrg.code).toBe(2);
    expect(noOrg.stderr).toContain('--org');

    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('tenant create');
    const cmdHelp = await cli(['evaluate', '--help']);
    expect(cmdHelp.code).toBe(0);
    expect(cmdHelp.stdout).toContain('--resource-type');
  });

  it('says clearly when the sidecar is unreachable (exit 1)', async () => {
    const port = await closedPort();
    const r = await cli(['tenant', 'list'], { SCOPEGATE_URL: `http://127.0.0.1:${port}` });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot reach the ScopeGate sidecar at http://127.0.0.1:${port}`);
    expect(r.stderr).toContain('ECONNREFUSED');
  });

  it('audit tail lists the recent writes; --follow prints new ones', async () => {
    const t = await sg.tenants.create({ name: 'Audited', slug: 'audited' });
    const tail = await cliJson<{ data: Array<{ seq: number; action: string; after: Array<{ id: string }> }> }>(['audit', 'tail', '--limit', '3']);
    expect(tail.data).toHaveLength(3);
    // Oldest first, like the table: the newest write is the last entry.
    expect(tail.data.at(-1)).toMatchObject({ action: 'tenant.create' });
    expect(tail.data.at(-1)!.after.map((r) => r.id)).toContain(t.id);
    const table = await cli(['audit', 'tail', '--limit', '3']);
    expect(table.stdout).toMatch(/^SEQ\s+AT\s+PRINCIPAL\s+ACTION/);
    expect(table.stdout.trim().split('\n')).toHaveLength(4);

    const child = spawn(process.execPath, [CLI_BIN, 'audit', 'tail', '--limit', '1', '--follow'], { cwd: tmpdir(), env: cliEnv(s.url, s.adminToken) });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor(() => out.includes('tenant.create'));
      const later = await sg.tenants.create({ name: 'Followed', slug: 'followed' });
      await waitFor(() => out.includes(later.id));
    } finally {
      child.kill('SIGTERM');
    }
    await exited;
  });

  it('demo sets up two tenants and prints mosquitto_sub / mosquitto_pub lines', async () => {
    const r = await cli(['demo', '--mqtt-host', 'broker.local', '--mqtt-port', '1884', '--suffix', 'clitest']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^mosquitto_sub -h broker\.local -p 1884 -u 'actor_\w+' -P '\S+' .*-t 'demo\/chat\/messages'/m);
    expect(r.stdout.match(/^mosquitto_pub /gm)).toHaveLength(2);
    expect((await sg.tenants.list({ slug: 'acme-clitest' })).data).toHaveLength(1);
  });
});

/** A port nothing listens on. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}
