/**
 * The CLI details of a newcomer's first hour (issue 16): the launcher runs one cached bundle and rebuilds it
 * only when a source changed; `--scope` takes a slug when it is unambiguous; `audit tail --json` is oldest
 * first like the table; the help says how to set an actor's kind.
 */
import { rmSync, statSync, utimesSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from './helpers/cli.ts';
import { ScopeGateClient } from '../client/index.ts';
import { startSidecar, type TestSidecar } from './helpers/sidecar.ts';

const BUNDLE = fileURLToPath(new URL('../node_modules/.cache/scopegate/cli.mjs', import.meta.url));
const SOURCE = fileURLToPath(new URL('../cli/format.ts', import.meta.url));

let s: TestSidecar;
let sg: ScopeGateClient;
beforeAll(async () => {
  s = await startSidecar();
  sg = new ScopeGateClient({ baseUrl: s.url, token: s.adminToken });
});
afterAll(() => s?.close());

const cli = (args: string[]): Promise<CliResult> => runCli(args, { url: s.url, token: s.adminToken, timeoutMs: 30_000 });

describe('scopegate launcher', () => {
  it('builds the bundle once, reuses it, and rebuilds it when a source file changes', async () => {
    rmSync(BUNDLE, { force: true });
    expect((await cli(['--help'])).code).toBe(0);
    const built = statSync(BUNDLE).mtimeMs;
    expect((await cli(['--help'])).code).toBe(0);
    expect(statSync(BUNDLE).mtimeMs).toBe(built);
    const now = new Date(Date.now() + 2_000);
    utimesSync(SOURCE, now, now);
    const after = await cli(['--help']);
    expect(after.code).toBe(0);
    expect(after.stdout).toContain('usage: scopegate');
    expect(statSync(BUNDLE).mtimeMs).toBeGreaterThan(built);
  }, 60_000);
});

describe('first-hour CLI details', () => {
  it('actor create/move accept an access scope slug when it is unambiguous, and say so when it is not', async () => {
    const t = await sg.tenants.create({ name: 'Slugs', slug: 'slugs' });
    const ws = await sg.workspaces.create({ tenantId: t.id, name: 'W' });
    const p = await sg.projects.create({ tenantId: t.id, workspaceId: ws.id, name: 'P' });
    const api = sg.project(t.id, p.id);
    const acme = await api.scopes.create({ slug: 'acme-corp', name: 'Acme' });
    const beta = await api.scopes.create({ slug: 'beta-corp', name: 'Beta' });
    // The same slug twice, under two parents: ambiguous.
    await api.scopes.create({ slug: 'downtown', name: 'Downtown A', parentScopeId: acme.accessScopeId });
    await api.scopes.create({ slug: 'downtown', name: 'Downtown B', parentScopeId: beta.accessScopeId });
    const where = ['--org', t.id, '--project', p.id];

    const created = await cli(['actor', 'create', ...where, '--name', 'user-alice', '--scope', 'acme-corp', '--json']);
    expect(created.code).toBe(0);
    const actor = JSON.parse(created.stdout);
    expect(actor.accessScopeId).toBe(acme.accessScopeId);
    expect(actor.kind).toBe('device');

    const moved = await cli(['actor', 'move', actor.actorId, ...where, '--scope', 'beta-corp', '--json']);
    expect(moved.code).toBe(0);
    expect(JSON.parse(moved.stdout).accessScopeId).toBe(beta.accessScopeId);

    const unknown = await cli(['actor', 'create', ...where, '--name', 'x', '--scope', 'nowhere']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("no access scope with slug 'nowhere'");
    const ambiguous = await cli(['actor', 'move', actor.actorId, ...where, '--scope', 'downtown']);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toContain("slug 'downtown' names 2 access scopes");
    expect((await api.actors.get(actor.actorId)).accessScopeId).toBe(beta.accessScopeId);

    const help = await cli(['actor', 'create', '--help']);
    expect(help.stdout).toContain('--kind');
    expect(help.stdout).toContain('agent (an AI agent)');
  }, 60_000);

  it('audit tail --json lists the entries oldest first, like the table', async () => {
    for (const n of [1, 2, 3]) await sg.tenants.create({ name: `Audit ${n}`, slug: `audit-${n}` });
    const r = await cli(['audit', 'tail', '--limit', '5', '--json']);
    expect(r.code).toBe(0);
    const seqs = (JSON.parse(r.stdout).data as Array<{ seq: number }>).map((e) => e.seq);
    expect(seqs.length).toBe(5);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  }, 60_000);
});
