/**
 * The admin console in a real browser: Debian's chromium driven by playwright-core (no browser download),
 * against a real sidecar and broker. The walk an admin makes: sign in, build seed 000's pattern 1 by clicking
 * (a tenant, two customer scopes, an app, actors, a token), watch the live session of an mqtt.js client that
 * uses that token, explain a refused topic, revoke the app and watch the subscription go. Then the same with
 * an API key confined to one tenant: the other tenant never appears. Every page passes axe-core with no
 * serious or critical violation. With CONSOLE_SCREENSHOTS=<dir> the walk also saves the README's screenshots.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type TestClient } from './helpers/mqtt.ts';
import { createActor, createProject, startSystem, type TestSystem } from './helpers/system.ts';

const CHROMIUM = '/usr/bin/chromium';
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const SHOTS = process.env.CONSOLE_SCREENSHOTS;

let sys: TestSystem;
let browser: BrowserContext;
let profile: string;
const clients: TestClient[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error('chromium not found at /usr/bin/chromium: apt-get install -y chromium (.ci/run does this)');
  sys = await startSystem();
  profile = mkdtempSync(join(tmpdir(), 'scopegate-chromium-'));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 860 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  if (SHOTS) mkdirSync(SHOTS, { recursive: true });
}, 60_000);

afterAll(async () => {
  for (const c of clients) await c.end().catch(() => undefined);
  await browser?.close();
  await sys?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

/** axe-core injected into the page: no serious or critical violation. */
async function expectAccessible(page: Page, where: string): Promise<void> {
  // Evaluated through the DevTools protocol: the console's CSP (script-src 'self') stays on and is not weakened for the test.
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const result = await (window as unknown as { axe: { run(): Promise<{ violations: Array<{ id: string; impact: string; nodes: Array<{ target: unknown }> }> }> } }).axe.run();
    return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map((n) => n.target) }));
  });
  expect(violations, `axe violations on ${where}`).toEqual([]);
}

async function shot(page: Page, name: string): Promise<void> {
  if (SHOTS) await page.screenshot({ path: join(SHOTS, `console-${name}.png`), fullPage: true });
}

async function signIn(page: Page, secret: string): Promise<void> {
  await page.goto(`${sys.side.url}/console`);
  await page.getByLabel('Admin token or API key').fill(secret);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect.poll(() => page.getByRole('navigation', { name: 'Sections' }).isVisible()).toBe(true);
}

const go = (page: Page, name: string) => page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name }).click();

describe('console in chromium', () => {
  let acmeTenantId = '';
  let aliceId = '';
  let globex: { orgId: string; actorId: string };

  it('an admin builds seed 000 pattern 1 by clicking, watches the session, explains a refusal, revokes the app', async () => {
    // Another tenant with a live session, made through the API: the API-key walk must never show it.
    const g = await createProject(sys.sg, 'globex');
    const gApp = await g.api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
    const gActor = await createActor(g.api, 'globex-device', null, [gApp.appId]);
    clients.push(await connect(sys.url, gActor.actorId, gActor.token, { clientId: 'globex-1' }));
    globex = { orgId: g.orgId, actorId: gActor.actorId };

    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await signIn(page, sys.side.adminToken);
    await expectAccessible(page, 'scope tree');

    // Tenant → workspace → project → two customer scopes, all by clicking.
    await page.getByLabel('Name', { exact: true }).fill('Acme SaaS');
    await page.getByLabel('Slug (optional)').fill('acme-saas');
    await page.getByRole('button', { name: 'Create tenant' }).click();
    await page.getByRole('button', { name: 'Add workspace to Tenant Acme SaaS' }).click();
    await page.getByLabel('Name', { exact: true }).last().fill('Main');
    await page.getByRole('button', { name: 'Create', exact: true }).click();
    await page.getByRole('button', { name: 'Add project to Workspace Main' }).click();
    await page.getByLabel('Name', { exact: true }).last().fill('Messaging');
    await page.getByRole('button', { name: 'Create', exact: true }).click();
    for (const [slug, name] of [['acme-corp', 'Acme Corp'], ['beta-corp', 'Beta Corp']] as const) {
      await page.getByRole('button', { name: 'Add access scope under Project Messaging' }).click();
      await page.getByLabel('Slug', { exact: true }).fill(slug);
      await page.getByLabel('Name', { exact: true }).last().fill(name);
      await page.getByRole('button', { name: 'Create', exact: true }).click();
      await expect.poll(() => page.getByText(name, { exact: true }).count()).toBe(1);
    }
    acmeTenantId = (await sys.sg.tenants.list({ slug: 'acme-saas' } as never)).data[0]!.id as string;

    // The cascade delete preview lists what would go, and nothing goes until confirmed.
    await page.getByRole('button', { name: 'Delete Access scope Beta Corp' }).click();
    await expect.poll(() => page.getByRole('dialog').innerText()).toContain('A cascade delete would remove 1 records');
    await shot(page, 'delete-preview');
    await page.getByRole('button', { name: 'Cancel' }).click();
    expect(await page.getByText('Beta Corp', { exact: true }).count()).toBe(1);
    const [beta] = (await sys.side.ok('GET', `/v1/scopes?tenantId=${acmeTenantId}&slug=beta-corp`)).data.filter((s: { slug: string }) => s.slug === 'beta-corp');
    expect(beta).toBeDefined(); // a dry run deletes nothing

    // The project: an app, one actor per customer, the grants, a token shown once.
    await page.getByRole('link', { name: 'Actors & apps' }).last().click();
    await page.getByLabel('App slug').fill('my-app');
    await page.getByLabel('App name').fill('My App');
    await page.getByRole('button', { name: 'Create app' }).click();
    await expect.poll(() => page.getByRole('cell', { name: 'my-app', exact: true }).count()).toBe(1);
    for (const [actor, scope] of [['user-alice', 'Acme Corp'], ['user-bob', 'Beta Corp']] as const) {
      await page.getByLabel('Actor name').fill(actor);
      await page.getByLabel('Access scope').selectOption({ label: scope });
      await page.getByRole('button', { name: 'Create actor' }).click();
      await page.getByRole('button', { name: `Grant app to ${actor}` }).click();
      await expect.poll(() => page.getByRole('button', { name: `Revoke my-app from ${actor}` }).count()).toBe(1);
    }
    await expectAccessible(page, 'actors & apps');
    await page.getByRole('button', { name: 'Issue token for user-alice' }).click();
    const token = await page.getByTestId('issued-token').inputValue();
    const subLine = await page.getByTestId('mosquitto-sub').innerText();
    aliceId = /-u '([^']+)'/.exec(subLine)![1]!;
    expect(subLine).toContain(`-P '${token}'`);
    expect(subLine).toContain("-t 'my-app/chat/messages'");
    await shot(page, 'actors');
    await page.getByRole('button', { name: 'I have copied it' }).click();

    // A real client with that token: its session and subscription appear live.
    const alice = await connect(sys.url, aliceId, token, { clientId: 'alice-laptop' });
    clients.push(alice);
    await alice.subscribe('my-app/chat/#');
    await go(page, 'Live sessions');
    const row = page.locator('tr', { hasText: 'alice-laptop' });
    await expect.poll(() => row.getByTestId('subscriptions').innerText(), { timeout: 10_000 }).toBe('my-app/chat/#');
    await expectAccessible(page, 'live sessions');
    await shot(page, 'sessions');

    // Explain a refused topic: the app is not granted; the steps say so.
    await go(page, 'Explain');
    await page.getByRole('textbox', { name: 'Actor id' }).fill(aliceId);
    await page.getByRole('textbox', { name: 'Topic' }).fill('billing/invoices');
    await page.getByRole('button', { name: 'Explain' }).first().click();
    const answer = page.getByTestId('mqtt-answer');
    await expect.poll(() => answer.innerText()).toContain('DENIED');
    expect(await answer.innerText()).toContain('App grant: not granted (granted: my-app)');
    await expectAccessible(page, 'explain');
    await shot(page, 'explain');

    // Revoke the app: the session's subscription goes, live.
    await go(page, 'Actors & apps');
    await page.getByRole('button', { name: 'Revoke my-app from user-alice' }).click();
    await go(page, 'Live sessions');
    await expect.poll(() => page.locator('tr', { hasText: 'alice-laptop' }).getByTestId('subscriptions').innerText(), { timeout: 10_000 }).toBe('none');

    await go(page, 'Audit log');
    await expect.poll(() => page.getByTestId('audit').innerText()).toContain('app_grant.delete');
    await expectAccessible(page, 'audit log');
    await shot(page, 'audit');
    await go(page, 'Scope tree');
    await expect.poll(() => page.getByText('1 actors · 1 sessions').count()).toBeGreaterThan(0);
    await shot(page, 'tree');
    await go(page, 'Roles & permissions');
    await expectAccessible(page, 'roles');
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);

  it('with an API key confined to one tenant the other tenant never appears', async () => {
    const tenant = await sys.side.ok('GET', `/v1/tenants/${acmeTenantId}`);
    const { key } = await sys.side.ok('POST', '/v1/api-keys', { scopeId: tenant.scopeId, name: 'acme console' });
    const page = await browser.newPage();
    const seen: string[] = [];
    await signIn(page, key);
    expect(await page.locator('header').innerText()).toContain('API key');
    const look = async () => seen.push(await page.locator('main').innerText());

    await expect.poll(() => page.getByText('Acme Corp', { exact: true }).count()).toBe(1);
    await look();
    await go(page, 'Live sessions');
    await expect.poll(() => page.locator('tr', { hasText: 'alice-laptop' }).count(), { timeout: 10_000 }).toBe(1);
    await look();
    await go(page, 'Actors & apps');
    await expect.poll(() => page.getByText('user-bob').count()).toBeGreaterThan(0);
    await look();
    await go(page, 'Audit log');
    await expect.poll(() => page.getByTestId('audit').innerText()).toContain('app_grant.delete');
    await look();
    await go(page, 'Scope tree');
    await look();
    for (const text of seen) {
      for (const hidden of ['globex', globex.orgId, globex.actorId, 'globex-1']) expect(text).not.toContain(hidden);
    }
    // The root-only action is not offered to a key.
    expect(await page.getByRole('button', { name: 'Create tenant' }).count()).toBe(0);
    await expectAccessible(page, 'scope tree (API key)');
    await page.close();
  }, 90_000);

  it('an admin moves a customer scope under another by clicking, and filters the audit log on the server', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await signIn(page, sys.side.adminToken);
    await page.getByRole('combobox', { name: 'Tenant' }).selectOption({ label: 'Acme SaaS (acme-saas)' });
    await expect.poll(() => page.getByRole('button', { name: 'Delete Access scope Beta Corp' }).count()).toBe(1);
    expect(errors).toEqual([]);
    // By keyboard: Enter on Move…, the select of allowed parents takes the focus, Enter submits.
    await page.getByRole('button', { name: 'Move Access scope Beta Corp' }).focus();
    await page.keyboard.press('Enter');
    const form = page.getByRole('form', { name: 'Move Access scope Beta Corp' });
    const select = form.getByLabel('New parent of Beta Corp');
    await expect.poll(() => select.evaluate((el) => el === document.activeElement)).toBe(true);
    // The allowed parents: never Beta Corp itself (nor its subtree) or its current parent, the project.
    expect(await select.locator('option').allInnerTexts()).toEqual(['Acme Corp']);
    await select.selectOption({ label: 'Acme Corp' });
    await expectAccessible(page, 'move form');
    await shot(page, 'move');
    await form.getByRole('button', { name: 'Move', exact: true }).focus();
    await page.keyboard.press('Enter');
    // Beta Corp is now drawn inside Acme Corp's branch, and the API agrees.
    const acmeBranch = page.locator('li', { has: page.locator('xpath=./div[@class="node"]/span[@class="name" and text()="Acme Corp"]') });
    await expect.poll(() => acmeBranch.getByRole('button', { name: 'Move Access scope Beta Corp' }).count()).toBe(1);
    const scopes = (await sys.side.ok('GET', `/v1/scopes?tenantId=${acmeTenantId}&limit=1000`)).data as Array<{ id: string; slug: string; parentId: string }>;
    expect(scopes.find((x) => x.slug === 'beta-corp')!.parentId).toBe(scopes.find((x) => x.slug === 'acme-corp')!.id);

    // The audit log, filtered by the server: what, then a time range with nothing in it.
    await go(page, 'Audit log');
    await expect.poll(() => page.getByTestId('audit').innerText()).toContain('app_grant.delete');
    await page.getByLabel('What (action)').fill('access_scope.*');
    await page.getByLabel('Who (principal)').fill('admin');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(() => page.getByTestId('audit').innerText()).not.toContain('app_grant.delete');
    const shown = await page.getByTestId('audit').innerText();
    expect(shown).toContain('access_scope.move');
    expect(shown).toMatch(/scope_\w+: parent scope_\w+ → scope_\w+/);
    expect(shown).toContain('access_scope.create');
    await expectAccessible(page, 'audit log (filtered)');
    await shot(page, 'audit');
    await page.getByLabel('Since').fill('2099-01-01T00:00');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(() => page.getByTestId('audit-count').innerText()).toBe('0 entries');
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);
});
