/**
 * SPEC §5's security promises, end to end over HTTP against real sidecars:
 *  (a) MQTT CONNECT with a JWT: algorithms pinned, every claim checked, signatures and key ids verified;
 *  (b) actor secrets shown once, stored as a hash only, wrong ones refused;
 *  (c) repeated failed logins slowed down per client address and per username;
 *  (d) no token, secret or password in any log line;
 *  (e) every admin write in the audit log with who, what, when, before/after;
 *  (f) an API key limited to one tenant can neither read nor change another tenant.
 */
import { SignJWT, UnsecuredJWT, base64url, decodeProtectedHeader, exportJWK, exportSPKI, generateKeyPair, importJWK, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoginThrottle } from '../authz-sidecar/credentials/login-throttle.ts';
import { createSidecar, type Sidecar, type SidecarOptions } from '../authz-sidecar/sidecar.ts';
import { MemoryPolicyStore } from '../authz-sidecar/store/memory-policy-store.ts';
import { captureLogs } from './helpers/log-capture.ts';

const ADMIN = 'sec-admin-token-0123456789abcdef';
const BROKER = 'sec-broker-token-0123456789abcdef';

interface Harness {
  sidecar: Sidecar;
  url: string;
  api<T = any>(method: string, path: string, body?: unknown, token?: string | null, headers?: Record<string, string>): Promise<{ status: number; body: T }>;
  ok<T = any>(method: string, path: string, body?: unknown, token?: string): Promise<T>;
  connect(username: string, password: string, remoteAddress?: string, clientId?: string): Promise<any>;
}

async function start(options: Partial<SidecarOptions> = {}): Promise<Harness> {
  const sidecar = await createSidecar({ store: new MemoryPolicyStore(), adminToken: ADMIN, brokerToken: BROKER, ...options });
  const url = `http://127.0.0.1:${await sidecar.listen(0)}`;
  const api = async (method: string, path: string, body?: unknown, token: string | null = ADMIN, headers: Record<string, string> = {}) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  return {
    sidecar,
    url,
    api,
    async ok(method, path, body, token) {
      const r = await api(method, path, body, token);
      if (r.status < 200 || r.status > 299) throw new Error(`${method} ${path} → ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    },
    async connect(username, password, remoteAddress = '192.0.2.1', clientId = 'client-1') {
      const r = await api('POST', '/v1/broker/connect', { clientId, username, password, remoteAddress }, BROKER);
      expect(r.status).toBe(200);
      return r.body;
    },
  };
}

/** A tenant with a project, an access scope, an app and one granted actor: what every section needs. */
async function onboard(h: Harness, slug: string) {
  const tenant = await h.ok('POST', '/v1/tenants', { name: `Tenant ${slug}`, slug });
  const ws = await h.ok('POST', '/v1/workspaces', { tenantId: tenant.id, name: 'Main' });
  const project = await h.ok('POST', '/v1/projects', { tenantId: tenant.id, workspaceId: ws.id, name: 'Messaging' });
  const base = `/v1/organizations/${tenant.id}/projects/${project.id}`;
  const scope = await h.ok('POST', `${base}/scopes`, { slug: 'customer', name: 'Customer' });
  const actor = await h.ok('POST', `${base}/actors`, { name: 'device', accessScopeId: scope.accessScopeId });
  const app = await h.ok('POST', `${base}/apps`, { slug: 'telemetry', name: 'Telemetry' });
  await h.ok('POST', `${base}/apps/${app.appId}/actors`, { actorId: actor.actorId });
  return { tenant, ws, project, base, scope, actor, app };
}

const b64json = (v: unknown) => base64url.encode(JSON.stringify(v));

// ---------------------------------------------------------------------------------------------------------
describe('(a) MQTT CONNECT with JWTs', () => {
  let h: Harness;
  let now = Date.parse('2030-01-01T00:00:00Z');
  let org: Awaited<ReturnType<typeof onboard>>;
  let other: Awaited<ReturnType<typeof onboard>>;
  let valid: string;
  let kid: string;
  let privateKey: CryptoKey;
  let publicJwk: JWK;

  beforeAll(async () => {
    // A lenient throttle, so that this section sees credential checks, not rate limiting.
    h = await start({ clock: () => new Date(now), throttle: new LoginThrottle({ freeAttempts: 1_000_000 }) });
    org = await onboard(h, 'jwt-org');
    other = await onboard(h, 'jwt-other');
    valid = (await h.ok('POST', `${org.base}/actors/${org.actor.actorId}/tokens`, { ttlSeconds: 600 })).token;
    const jwks = await h.ok('GET', '/.well-known/jwks.json', undefined, null as never);
    expect(jwks.keys).toHaveLength(1);
    publicJwk = jwks.keys[0];
    kid = publicJwk.kid!;
    expect(decodeProtectedHeader(valid)).toMatchObject({ alg: 'ES256', kid });
    // The real signing key, from the store: tokens signed with it are wrong only in the claim under test.
    const [record] = [...h.sidecar.replica.model.all('signingKey')];
    privateKey = (await importJWK(record!.privateJwk as JWK, 'ES256')) as CryptoKey;
  });
  afterAll(() => h?.sidecar.close());

  /** Signs with the sidecar's own key; `claims` override the defaults of a valid token. */
  const forge = async (claims: Record<string, unknown>, header: Record<string, unknown> = {}) => {
    const iat = Math.floor(now / 1000);
    const payload = { sub: org.actor.actorId, iss: 'scopegate', aud: 'scopegate-mqtt', iat, nbf: iat, exp: iat + 600, tid: org.tenant.id, ...claims };
    for (const [k, v] of Object.entries(payload)) if (v === undefined) delete (payload as Record<string, unknown>)[k];
    return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT', ...header }).sign(privateKey);
  };

  const expectBadCredentials = async (password: string, what: string) => {
    const d = await h.connect(org.actor.actorId, password);
    expect(d, what).toMatchObject({ decision: 'denied', reason: 'bad_credentials' });
    expect(d.session, what).toBeUndefined();
  };

  it('a valid token is allowed', async () => {
    const d = await h.connect(org.actor.actorId, valid);
    expect(d).toMatchObject({ decision: 'allowed', session: { actorId: org.actor.actorId, tenantId: org.tenant.id } });
    expect(d.session.expiresAt).toBe(now + 600_000);
    // A token forged with the real key and correct claims is accepted too: the refusals below are claim checks.
    expect((await h.connect(org.actor.actorId, await forge({}))).decision).toBe('allowed');
  });

  it("refuses alg 'none' (unsecured) tokens", async () => {
    const unsecured = new UnsecuredJWT({ tid: org.tenant.id }).setSubject(org.actor.actorId).setIssuer('scopegate').setAudience('scopegate-mqtt').setIssuedAt(Math.floor(now / 1000)).setExpirationTime(Math.floor(now / 1000) + 600).encode();
    await expectBadCredentials(unsecured, 'alg none');
    // The same with a kid and variants of 'none', and with the valid token's own payload and no signature.
    const [, payload] = valid.split('.');
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      await expectBadCredentials(`${b64json({ alg, typ: 'JWT', kid })}.${payload}.`, `alg ${alg}`);
    }
    await expectBadCredentials(`${b64json({ alg: 'ES256', typ: 'JWT', kid })}.${payload}.`, 'ES256 header, no signature');
  });

  it('refuses HS256 tokens signed with the public key (algorithm confusion)', async () => {
    const spki = await exportSPKI((await importJWK(publicJwk, 'ES256')) as CryptoKey);
    const secrets = [new TextEncoder().encode(spki), new TextEncoder().encode(JSON.stringify(publicJwk)), base64url.decode(publicJwk.x!)];
    for (const [i, secret] of secrets.entries()) {
      for (const alg of ['HS256', 'HS384', 'HS512']) {
        const iat = Math.floor(now / 1000);
        const token = await new SignJWT({ tid: org.tenant.id })
          .setProtectedHeader({ alg, kid, typ: 'JWT' })
          .setSubject(org.actor.actorId)
          .setIssuer('scopegate')
          .setAudience('scopegate-mqtt')
          .setIssuedAt(iat)
          .setNotBefore(iat)
          .setExpirationTime(iat + 600)
          .sign(secret);
        await expectBadCredentials(token, `${alg} with public key #${i}`);
      }
    }
  });

  it('refuses other asymmetric algorithms, even with a key of their own under the real kid', async () => {
    for (const alg of ['ES384', 'RS256', 'PS256', 'EdDSA'] as const) {
      const { privateKey: other } = await generateKeyPair(alg, { extractable: true });
      const iat = Math.floor(now / 1000);
      const token = await new SignJWT({}).setProtectedHeader({ alg, kid }).setSubject(org.actor.actorId).setIssuer('scopegate').setAudience('scopegate-mqtt').setIssuedAt(iat).setExpirationTime(iat + 600).sign(other);
      await expectBadCredentials(token, alg);
    }
  });

  it('refuses expired tokens, by `exp` and by the sidecar clock moving on', async () => {
    const iat = Math.floor(now / 1000);
    await expectBadCredentials(await forge({ iat: iat - 7200, nbf: iat - 7200, exp: iat - 3600 }), 'expired an hour ago');
    await expectBadCredentials(await forge({ exp: iat - 1 }), 'expired a second ago');
    const short = (await h.ok('POST', `${org.base}/actors/${org.actor.actorId}/tokens`, { ttlSeconds: 60 })).token;
    expect((await h.connect(org.actor.actorId, short)).decision).toBe('allowed');
    const saved = now;
    now += 61_000;
    try {
      await expectBadCredentials(short, 'issued token past its exp');
    } finally {
      now = saved;
    }
  });

  it('refuses tokens that are not yet valid (nbf or iat in the future)', async () => {
    const iat = Math.floor(now / 1000);
    await expectBadCredentials(await forge({ nbf: iat + 3600 }), 'nbf in an hour');
    await expectBadCredentials(await forge({ nbf: iat + 3600, iat: iat + 3600, exp: iat + 7200 }), 'issued in the future');
  });

  it('refuses unknown key ids and keys that are not the sidecar\'s', async () => {
    await expectBadCredentials(await forge({}, { kid: 'signingkey_unknown' }), 'unknown kid on the real key');
    const { privateKey: foreign } = await generateKeyPair('ES256', { extractable: true });
    const iat = Math.floor(now / 1000);
    const sign = (header: Record<string, unknown>) =>
      new SignJWT({ tid: org.tenant.id }).setProtectedHeader({ alg: 'ES256', ...header }).setSubject(org.actor.actorId).setIssuer('scopegate').setAudience('scopegate-mqtt').setIssuedAt(iat).setNotBefore(iat).setExpirationTime(iat + 600).sign(foreign);
    await expectBadCredentials(await sign({ kid: 'attacker-key' }), 'foreign key, foreign kid');
    await expectBadCredentials(await sign({ kid }), 'foreign key under the real kid');
    await expectBadCredentials(await sign({}), 'foreign key, no kid');
    // A key embedded in the header (jwk / jku / x5u) is never trusted.
    const foreignPublic = await exportJWK(foreign);
    delete foreignPublic.d;
    await expectBadCredentials(await sign({ jwk: foreignPublic }), 'embedded jwk');
    await expectBadCredentials(await sign({ kid: 'x', jku: 'http://127.0.0.1:1/jwks.json' }), 'jku');
  });

  it('refuses foreign issuers, audiences and missing claims', async () => {
    await expectBadCredentials(await forge({ iss: 'https://evil.example' }), 'foreign issuer');
    await expectBadCredentials(await forge({ iss: undefined }), 'no issuer');
    await expectBadCredentials(await forge({ aud: 'someone-else' }), 'foreign audience');
    await expectBadCredentials(await forge({ aud: undefined }), 'no audience');
    await expectBadCredentials(await forge({ exp: undefined }), 'no exp');
    await expectBadCredentials(await forge({ sub: undefined }), 'no sub');
  });

  it("refuses another actor's token (sub ≠ username), also across tenants", async () => {
    const second = await h.ok('POST', `${org.base}/actors`, { name: 'second', accessScopeId: org.scope.accessScopeId });
    const secondToken = (await h.ok('POST', `${org.base}/actors/${second.actorId}/tokens`, {})).token;
    expect((await h.connect(second.actorId, secondToken)).decision).toBe('allowed');
    await expectBadCredentials(secondToken, 'same tenant, other actor');
    const foreignToken = (await h.ok('POST', `${other.base}/actors/${other.actor.actorId}/tokens`, {})).token;
    await expectBadCredentials(foreignToken, 'other tenant');
    await expectBadCredentials(await forge({ sub: second.actorId }), 'forged sub');
  });

  it('refuses tampered tokens: signature, payload or header changed', async () => {
    const [header, payload, signature] = valid.split('.') as [string, string, string];
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    await expectBadCredentials(`${header}.${payload}.${flip(signature, 5)}`, 'signature flipped early');
    await expectBadCredentials(`${header}.${payload}.${flip(signature, signature.length - 2)}`, 'signature flipped late');
    await expectBadCredentials(`${header}.${payload}.${signature.slice(0, -4)}`, 'signature truncated');
    await expectBadCredentials(`${header}.${payload}.${signature}${signature}`, 'signature doubled');
    const claims = JSON.parse(new TextDecoder().decode(base64url.decode(payload)));
    await expectBadCredentials(`${header}.${b64json({ ...claims, exp: claims.exp + 86_400 })}.${signature}`, 'exp extended');
    await expectBadCredentials(`${header}.${b64json({ ...claims, tid: other.tenant.id })}.${signature}`, 'tenant changed');
    await expectBadCredentials(`${b64json({ alg: 'ES256', kid, typ: 'JWT', crit: ['x'] })}.${payload}.${signature}`, 'header changed');
    await expectBadCredentials(`${header}.${payload}`, 'two parts');
    await expectBadCredentials(`..`, 'empty parts');
    await expectBadCredentials(`${header}.${payload}.${signature}.x`, 'four parts');
    // Garbage never answers anything but bad_credentials, and the valid token still works afterwards.
    for (const junk of ['', 'x', 'a.b.c', '\u0000.\u0000.\u0000', `${'a'.repeat(5000)}.b.c`, `${header}.${'!'.repeat(10)}.${signature}`]) {
      await expectBadCredentials(junk, `junk ${junk.slice(0, 20)}`);
    }
    expect((await h.connect(org.actor.actorId, valid)).decision).toBe('allowed');
  });

  it('refuses unknown actors and a valid token under an unknown username, the same way', async () => {
    const unknown = await h.connect('actor_doesnotexist', valid);
    expect(unknown).toMatchObject({ decision: 'denied', reason: 'bad_credentials' });
    const wrong = await h.connect(org.actor.actorId, 'not-the-password');
    expect(wrong.message).toBe(unknown.message);
  });
});

// ---------------------------------------------------------------------------------------------------------
describe('(b) actor secrets', () => {
  let h: Harness;
  let org: Awaited<ReturnType<typeof onboard>>;
  beforeAll(async () => {
    h = await start({ throttle: new LoginThrottle({ freeAttempts: 1_000_000 }) });
    org = await onboard(h, 'secret-org');
  });
  afterAll(() => h?.sidecar.close());

  it('shows a secret once, lists it without its value, stores only a salted hash', async () => {
    const issued = await h.ok('POST', `${org.base}/actors/${org.actor.actorId}/secrets`);
    const secret: string = issued.secret;
    expect(secret).toMatch(/^sgs_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    expect(issued.mqtt).toEqual({ username: org.actor.actorId, password: secret });
    expect(issued).not.toHaveProperty('hash');
    const random = secret.split('_').slice(2).join('_');
    const pieces = Array.from({ length: random.length - 11 }, (_, i) => random.slice(i, i + 12));

    // Reading it back never shows it again, nor its hash.
    const listed = await h.ok('GET', `${org.base}/actors/${org.actor.actorId}/secrets`);
    expect(listed.data).toHaveLength(1);
    expect(listed.data[0]).toMatchObject({ id: issued.secretId, actorId: org.actor.actorId });
    expect(listed.data[0]).not.toHaveProperty('hash');
    expect(listed.data[0]).not.toHaveProperty('secret');
    const listedText = JSON.stringify(listed);
    for (const p of pieces) expect(listedText).not.toContain(p);

    // The stored record: a scrypt hash with a salt, nothing of the secret's random part.
    const snap = await h.sidecar.store.snapshot();
    const stored = snap.records.find((r) => r.id === issued.secretId) as Record<string, unknown> | undefined;
    expect(stored).toBeDefined();
    expect(stored!.hash).toMatch(/^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9_-]{16,}\$[A-Za-z0-9_-]{32,}$/);
    const storedText = JSON.stringify(snap);
    expect(storedText).not.toContain(secret);
    for (const p of pieces) expect(storedText).not.toContain(p);

    // The audit log and the change feed carry no hash either.
    const audit = await h.ok('GET', '/v1/audit?limit=5');
    const entry = audit.data.find((e: any) => e.action === 'actor_secret.create');
    expect(entry.after[0].hash).toBe('[redacted]');
    for (const p of pieces) expect(JSON.stringify(audit)).not.toContain(p);
    expect(JSON.stringify(audit)).not.toContain(stored!.hash);

    // A second secret of the same value hashes differently (salted).
    const again = await h.ok('POST', `${org.base}/actors/${org.actor.actorId}/secrets`);
    const snap2 = await h.sidecar.store.snapshot();
    const hashes = snap2.records.filter((r) => r.kind === 'actorSecret').map((r) => (r as { hash: string }).hash);
    expect(new Set(hashes).size).toBe(2);
    expect(again.secret).not.toBe(secret);
  });

  it('accepts the right secret and refuses every near miss', async () => {
    const { secret } = await h.ok('POST', `${org.base}/actors/${org.actor.actorId}/secrets`);
    expect((await h.connect(org.actor.actorId, secret)).decision).toBe('allowed');
    const last = secret.at(-1) === 'A' ? 'B' : 'A';
    const nearMisses = [
      `${secret.slice(0, -1)}${last}`, // last character
      `${secret.slice(0, 17)}${secret[17] === 'A' ? 'B' : 'A'}${secret.slice(18)}`, // first random character
      secret.slice(0, -1), // one short
      `${secret}A`, // one long
      secret.toUpperCase(),
      ` ${secret}`,
      `${secret}\u0000`,
      secret.replace(/^sgs_[0-9a-f]{12}/, 'sgs_000000000000'), // another prefix, same random part
      '',
      'sgs_',
    ];
    for (const p of nearMisses) expect(await h.connect(org.actor.actorId, p), JSON.stringify(p)).toMatchObject({ decision: 'denied', reason: 'bad_credentials' });
    // The secret of one actor is no password of another.
    const second = await h.ok('POST', `${org.base}/actors`, { name: 'second', accessScopeId: org.scope.accessScopeId });
    expect(await h.connect(second.actorId, secret)).toMatchObject({ decision: 'denied', reason: 'bad_credentials' });
    // And it is still accepted after all those failures (no lockout of the right secret here: lenient throttle).
    expect((await h.connect(org.actor.actorId, secret)).decision).toBe('allowed');
  });

  it('a revoked secret, or one of a deleted actor, no longer works', async () => {
    const actor = await h.ok('POST', `${org.base}/actors`, { name: 'revocable', accessScopeId: org.scope.accessScopeId });
    const a = await h.ok('POST', `${org.base}/actors/${actor.actorId}/secrets`);
    const b = await h.ok('POST', `${org.base}/actors/${actor.actorId}/secrets`);
    await h.ok('DELETE', `${org.base}/actors/${actor.actorId}/secrets/${a.secretId}`);
    expect((await h.connect(actor.actorId, a.secret)).decision).toBe('denied');
    expect((await h.connect(actor.actorId, b.secret)).decision).toBe('allowed');
    await h.ok('DELETE', `${org.base}/actors/${actor.actorId}?cascade=true`);
    expect((await h.connect(actor.actorId, b.secret)).decision).toBe('denied');
    const snap = await h.sidecar.store.snapshot();
    expect(snap.records.filter((r) => r.kind === 'actorSecret' && (r as { actorId: string }).actorId === actor.actorId)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------------
describe('(c) throttling of failed MQTT logins', () => {
  let h: Harness;
  let now = 1_000_000;
  let org: Awaited<ReturnType<typeof onboard>>;
  let secret: string;
  let other: { actorId: string; secret: string };
  beforeAll(async () => {
    // The default thresholds (5 free failures in 60 s, then 1 s doubling), on a clock the test moves.
    h = await start({ throttle: new LoginThrottle({ clock: () => now }) });
    org = await onboard(h, 'throttle-org');
    secret = (await h.ok('POST', `${org.base}/actors/${org.actor.actorId}/secrets`)).secret;
    const actor = await h.ok('POST', `${org.base}/actors`, { name: 'bystander', accessScopeId: org.scope.accessScopeId });
    other = { actorId: actor.actorId, secret: (await h.ok('POST', `${org.base}/actors/${actor.actorId}/secrets`)).secret };
  });
  afterAll(() => h?.sidecar.close());

  it('rate-limits one username from one address after the threshold; others are unaffected', async () => {
    const attacker = '198.51.100.7';
    for (let i = 0; i < 5; i++) {
      expect(await h.connect(org.actor.actorId, `wrong-${i}`, attacker), `attempt ${i + 1}`).toMatchObject({ decision: 'denied', reason: 'bad_credentials' });
    }
    // The 6th failure starts the back-off; from then on nothing is even checked, not even the right secret.
    expect(await h.connect(org.actor.actorId, 'wrong-6', attacker)).toMatchObject({ decision: 'denied', reason: 'bad_credentials' });
    const limited = await h.connect(org.actor.actorId, 'wrong-7', attacker);
    expect(limited).toMatchObject({ decision: 'denied', reason: 'rate_limited' });
    expect(limited.message).toMatch(/retry in \d+ s/);
    expect(await h.connect(org.actor.actorId, secret, attacker)).toMatchObject({ decision: 'denied', reason: 'rate_limited' });

    // A different username from a different address is unaffected.
    expect((await h.connect(other.actorId, other.secret, '203.0.113.9')).decision).toBe('allowed');
    expect(await h.connect(other.actorId, 'wrong', '203.0.113.9')).toMatchObject({ decision: 'denied', reason: 'bad_credentials' });
    // Per username from the attacker's address only: the holder of the secret, elsewhere, is not locked out
    // (issue 11.11); per address: the attacker's address is slowed down for any username.
    expect((await h.connect(org.actor.actorId, secret, '203.0.113.10')).decision).toBe('allowed');
    expect((await h.connect(other.actorId, other.secret, attacker)).reason).toBe('rate_limited');

    // After the back-off the right secret works again from the attacker's address too.
    now += 1_001;
    expect((await h.connect(org.actor.actorId, secret, attacker)).decision).toBe('allowed');
  });

  it('the back-off doubles with every further failure', async () => {
    const address = '198.51.100.20';
    const username = 'actor_bruteforce';
    for (let i = 0; i < 5; i++) expect((await h.connect(username, 'x', address)).reason).toBe('bad_credentials');
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      expect((await h.connect(username, 'x', address)).reason).toBe('bad_credentials'); // checked, and failed
      const blocked = await h.connect(username, 'x', address);
      expect(blocked.reason).toBe('rate_limited');
      const seconds = Number(/retry in (\d+) s/.exec(blocked.message)?.[1]);
      waits.push(seconds);
      now += seconds * 1000 + 1; // let the back-off pass, so the next attempt is checked again
    }
    expect(waits).toEqual([1, 2, 4, 8]);
  });
});

// ---------------------------------------------------------------------------------------------------------
describe('(d) no secret in any log line', () => {
  it('admin writes, tokens, secrets, API keys, connects and failed logins leave no credential in the logs', async () => {
    const { logger, raw: lines } = captureLogs('trace');
    const h = await start({ logger, throttle: new LoginThrottle({ freeAttempts: 3 }) });
    try {
      const secrets: string[] = [ADMIN, BROKER];
      const org = await onboard(h, 'log-org');
      await h.ok('PATCH', `/v1/tenants/${org.tenant.id}`, { name: 'Renamed' });
      const token = (await h.ok('POST', `${org.base}/actors/${org.actor.actorId}/tokens`, { ttlSeconds: 300 })).token;
      const secret = (await h.ok('POST', `${org.base}/actors/${org.actor.actorId}/secrets`)).secret;
      const key = (await h.ok('POST', '/v1/api-keys', { scopeId: org.tenant.scopeId, name: 'ci' })).key;
      secrets.push(token, ...token.split('.').slice(1), secret, secret.slice(17), key, key.slice(4));
      // Use every credential, rightly and wrongly, in headers and bodies.
      expect((await h.connect(org.actor.actorId, token)).decision).toBe('allowed');
      expect((await h.connect(org.actor.actorId, secret)).decision).toBe('allowed');
      const wrongPasswords = ['hunter2-very-secret-password', `${secret.slice(0, -1)}Z`, `${token.slice(0, -3)}abc`];
      secrets.push(wrongPasswords[0]!);
      for (const p of wrongPasswords) await h.connect(org.actor.actorId, p, '192.0.2.50');
      for (let i = 0; i < 5; i++) await h.connect(org.actor.actorId, wrongPasswords[0]!, '192.0.2.50'); // rate limited
      expect((await h.api('GET', `/v1/tenants/${org.tenant.id}`, undefined, key)).status).toBe(200);
      expect((await h.api('GET', '/v1/tenants', undefined, `${key}x`)).status).toBe(401);
      expect((await h.api('GET', '/v1/tenants', undefined, 'sga_guessed-admin-token-attempt')).status).toBe(401);
      secrets.push('sga_guessed-admin-token-attempt');
      expect((await h.api('POST', '/v1/broker/connect', { clientId: 'c', username: 'u', password: 'p' }, ADMIN)).status).toBe(401);
      // Bodies that carry a credential where it does not belong, and invalid JSON echoing it.
      expect((await h.api('POST', '/v1/tenants', { name: 'x', password: secret, token })).status).toBe(400);
      const raw = await fetch(`${h.url}/v1/tenants`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: `{"name": "${secret}", "token": ${token}` });
      expect(raw.status).toBe(400);
      // Deletes and the audit read, with the API key.
      expect((await h.api('GET', '/v1/audit', undefined, key)).status).toBe(200);
      await h.ok('DELETE', `${org.base}/actors/${org.actor.actorId}?cascade=true`);

      expect(lines.length).toBeGreaterThan(20);
      expect(lines.some((l) => l.includes('mqtt connect decision'))).toBe(true);
      expect(lines.some((l) => l.includes('"msg":"request"'))).toBe(true);
      for (const line of lines) {
        for (const s of secrets) expect(line.includes(s), `log line leaks a credential: ${line.slice(0, 300)}`).toBe(false);
        expect(line, 'no authorization header logged').not.toMatch(/authorization|bearer/i);
        expect(line).not.toMatch(/scrypt\$/);
        expect(line).not.toMatch(/"d":"[A-Za-z0-9_-]{40,}"/); // a private JWK
      }
    } finally {
      await h.sidecar.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
describe('(e) audit log', () => {
  let h: Harness;
  let now = Date.parse('2031-06-01T12:00:00Z');
  beforeAll(async () => {
    h = await start({ clock: () => new Date(now) });
  });
  afterAll(() => h?.sidecar.close());

  it('records every admin write with principal, action, time and before/after', async () => {
    type Entry = { seq: number; principal: string; action: string; at: string; requestId?: string; tenantIds: string[]; before: any[]; after: any[] };
    const writes: Array<{ revision: number; action: string; principal: string; at: string; check: (e: Entry) => void }> = [];
    const ids = (rs: any[]) => rs.map((r) => r.id);
    /** Records the write never changed (read to serialize with others) may appear on both sides, unchanged. */
    const onlyTouched = (e: Entry, except: string[]) => {
      for (const r of e.before.filter((x) => !except.includes(x.id))) expect(e.after, `${e.action}: ${r.id} changed`).toContainEqual(r);
    };
    const created = (id: () => string) => (e: Entry) => {
      expect(ids(e.after)).toContain(id());
      expect(ids(e.before)).not.toContain(id());
      onlyTouched(e, []);
    };
    const updated = (id: () => string, before: Record<string, unknown>, after: Record<string, unknown>, alsoChanged: () => string[] = () => []) => (e: Entry) => {
      const b = e.before.find((r) => r.id === id());
      const a = e.after.find((r) => r.id === id());
      expect(b, `${e.action}: before`).toMatchObject(before);
      expect(a, `${e.action}: after`).toMatchObject(after);
      onlyTouched(e, [id(), ...alsoChanged()]);
    };
    const deleted = (id: () => string, alsoDeleted = 0) => (e: Entry) => {
      expect(ids(e.before)).toContain(id());
      expect(ids(e.after)).not.toContain(id());
      expect(e.before.length).toBeGreaterThanOrEqual(1 + alsoDeleted);
    };
    let last: any;
    const record = async (method: string, path: string, body: unknown, action: string, check: (e: Entry) => void, token = ADMIN, principal = 'admin') => {
      now += 1000;
      const r = await h.api(method, path, body, token);
      expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).toBeLessThan(300);
      expect(typeof r.body.revision).toBe('number');
      writes.push({ revision: r.body.revision, action, principal, at: new Date(now).toISOString(), check });
      last = r.body;
      return r.body;
    };
    const tenant = await record('POST', '/v1/tenants', { name: 'Audit Co', slug: 'audit-co' }, 'tenant.create', created(() => tenant.id));
    await record('PATCH', `/v1/tenants/${tenant.id}`, { name: 'Audit Company', maxUsers: 7 }, 'tenant.update', updated(() => tenant.id, { name: 'Audit Co', maxUsers: null }, { name: 'Audit Company', maxUsers: 7 }, () => [tenant.scopeId]));
    const ws = await record('POST', '/v1/workspaces', { tenantId: tenant.id, name: 'Eng' }, 'workspace.create', created(() => ws.id));
    const project = await record('POST', '/v1/projects', { tenantId: tenant.id, workspaceId: ws.id, name: 'API' }, 'project.create', created(() => project.id));
    const roles = await record('POST', '/v1/roles/batch', [{ scopeId: project.scopeId, name: 'A' }, { scopeId: project.scopeId, name: 'B' }], 'role.batch_create', (e) => {
      expect(ids(e.after)).toEqual(expect.arrayContaining(ids(roles.data)));
      onlyTouched(e, []);
    });
    await record('PATCH', `/v1/roles/${roles.data[0].id}`, { description: 'first' }, 'role.update', updated(() => roles.data[0].id, { name: 'A' }, { name: 'A', description: 'first' }));
    const perm = await record('POST', '/v1/permissions', { scopeId: project.scopeId, action: 'read', resourceType: 'doc' }, 'permission.create', created(() => perm.id));
    const link = await record('POST', '/v1/role-permissions', { roleId: roles.data[0].id, permissionId: perm.id }, 'role_permission.create', created(() => link.id));
    const user = await record('POST', '/v1/users', { kindeId: 'kp_audit', email: 'audit@example.com', defaultTenantId: tenant.id }, 'user.create', created(() => user.id));
    await record('PATCH', `/v1/users/${user.id}`, { firstName: 'Ada' }, 'user.update', updated(() => user.id, { firstName: null }, { firstName: 'Ada' }));
    const m = await record('POST', '/v1/memberships', { subjectId: user.subjectId, scopeId: project.scopeId }, 'membership.create', created(() => m.id));
    const ra = await record('POST', '/v1/role-assignments', { roleId: roles.data[0].id, membershipId: m.id }, 'role_assignment.create', created(() => ra.id));
    const base = `/v1/organizations/${tenant.id}/projects/${project.id}`;
    const scope = await record('POST', `${base}/scopes`, { slug: 'acme', name: 'Acme' }, 'access_scope.create', created(() => scope.id));
    const actor = await record('POST', `${base}/actors`, { name: 'dev' }, 'actor.create', created(() => actor.id));
    await record('PATCH', `${base}/actors/${actor.actorId}`, { accessScopeId: scope.accessScopeId }, 'actor.update', updated(() => actor.id, { accessScopeId: null }, { accessScopeId: scope.accessScopeId }));
    const app = await record('POST', `${base}/apps`, { slug: 'app', name: 'App' }, 'app.create', created(() => app.id));
    const grant = await record('POST', `${base}/apps/${app.appId}/actors`, { actorId: actor.actorId }, 'app_grant.create', created(() => grant.id));
    const secret = await record('POST', `${base}/actors/${actor.actorId}/secrets`, undefined, 'actor_secret.create', (e) => {
      created(() => secret.secretId)(e);
      expect(e.after[0].hash).toBe('[redacted]');
    });
    const key = await record('POST', '/v1/api-keys', { scopeId: tenant.scopeId, name: 'ops' }, 'api_key.create', (e) => {
      created(() => key.id)(e);
      expect(e.after[0].hash).toBe('[redacted]');
    });
    // A write by an API key is attributed to the key.
    const byKey = await record('POST', '/v1/workspaces', { tenantId: tenant.id, name: 'By key' }, 'workspace.create', created(() => byKey.id), key.key, key.id);
    await record('DELETE', `/v1/role-assignments/${ra.id}`, undefined, 'role_assignment.delete', (e) => {
      deleted(() => ra.id)(e);
      expect(e.after).toEqual([]);
    });
    await record('DELETE', `/v1/organizations/${tenant.id}/projects/${project.id}/apps/${app.appId}/actors/${actor.actorId}`, undefined, 'app_grant.delete', deleted(() => grant.id));
    await record('DELETE', `/v1/tenants/${tenant.id}?cascade=true`, undefined, 'tenant.delete', (e) => {
      deleted(() => tenant.id, 10)(e);
      for (const id of [ws.id, project.id, perm.id, m.id, actor.id, secret.secretId, key.id, user.id]) expect(ids(e.before)).toContain(id);
      for (const r of e.before) if (r.kind === 'actorSecret' || r.kind === 'apiKey') expect(r.hash).toBe('[redacted]');
      // Users are per tenant: the tenant's user goes with it, nothing is left behind.
      expect(e.after).toEqual([]);
    });
    expect(last.deleted.length).toBeGreaterThan(10);

    const audit = await h.ok('GET', '/v1/audit?limit=1000');
    const bySeq = new Map<number, Entry>(audit.data.map((e: Entry) => [e.seq, e]));
    for (const w of writes) {
      const e = bySeq.get(w.revision);
      expect(e, `${w.action} at revision ${w.revision} is in the audit log`).toBeDefined();
      expect(e!.action).toBe(w.action);
      expect(e!.principal).toBe(w.principal);
      expect(e!.at).toBe(w.at);
      expect(typeof e!.requestId).toBe('string');
      expect(Array.isArray(e!.before) && Array.isArray(e!.after)).toBe(true);
      w.check(e!);
    }
    // Exactly one entry per write: nothing unaudited, nothing twice.
    const mine = audit.data.filter((e: Entry) => e.seq >= writes[0]!.revision);
    expect(mine.map((e: Entry) => e.seq).sort((x: number, y: number) => x - y)).toEqual(writes.map((w) => w.revision));
    // Newest first, and paginated with `before`.
    const seqs = audit.data.map((e: Entry) => e.seq);
    expect(seqs).toEqual([...seqs].sort((x: number, y: number) => y - x));
    const page = await h.ok('GET', `/v1/audit?limit=2&before=${seqs[0]}`);
    expect(page.data.map((e: Entry) => e.seq)).toEqual(seqs.slice(1, 3));
  });

  it('refused writes leave no audit entry', async () => {
    const before = (await h.ok('GET', '/v1/audit?limit=1')).data[0].seq;
    expect((await h.api('POST', '/v1/workspaces', { tenantId: 'tenant_doesnotexist', name: 'x' })).status).toBe(422);
    expect((await h.api('POST', '/v1/roles/batch', [{ scopeId: 'scope_tenant_nope', name: 'x' }])).status).toBe(422);
    expect((await h.api('DELETE', '/v1/tenants/tenant_nope')).status).toBe(404);
    expect((await h.ok('GET', '/v1/audit?limit=1')).data[0].seq).toBe(before);
  });
});

// ---------------------------------------------------------------------------------------------------------
describe('(f) API keys are confined to their subtree', () => {
  let h: Harness;
  let a: Awaited<ReturnType<typeof onboard>>;
  let b: Awaited<ReturnType<typeof onboard>>;
  let keyA: string;
  let keyAId: string;
  const aIds: Record<string, string> = {};
  const bIds: Record<string, string> = {};

  beforeAll(async () => {
    h = await start();
    a = await onboard(h, 'tenant-a');
    b = await onboard(h, 'tenant-b');
    for (const [t, ids] of [[a, aIds], [b, bIds]] as const) {
      const role = (await h.ok('POST', '/v1/roles/batch', [{ scopeId: t.project.scopeId, name: 'Dev' }])).data[0];
      const perm = (await h.ok('POST', '/v1/permissions/batch', [{ scopeId: t.project.scopeId, action: 'read', resourceType: '*' }])).data[0];
      const link = (await h.ok('POST', '/v1/role-permissions/batch', [{ roleId: role.id, permissionId: perm.id }])).data[0];
      const user = await h.ok('POST', '/v1/users', { kindeId: `kp_${t.tenant.slug}`, email: `u@${t.tenant.slug}.example`, defaultTenantId: t.tenant.id });
      const m = await h.ok('POST', '/v1/memberships', { subjectId: user.subjectId, scopeId: t.project.scopeId });
      const ra = await h.ok('POST', '/v1/role-assignments', { roleId: role.id, membershipId: m.id });
      const env = await h.ok('POST', '/v1/environments', { tenantId: t.tenant.id, projectId: t.project.id, name: 'Prod' });
      const po = await h.ok('POST', '/v1/scope-overrides/permissions', { childScopeId: env.scopeId, permissionId: perm.id, state: 'disabled' });
      const secret = await h.ok('POST', `${t.base}/actors/${t.actor.actorId}/secrets`);
      const key = await h.ok('POST', '/v1/api-keys', { scopeId: t.tenant.scopeId, name: `${t.tenant.slug}-key` });
      Object.assign(ids, { role: role.id, perm: perm.id, link: link.id, user: user.id, userSubject: user.subjectId, membership: m.id, ra: ra.id, env: env.id, envScope: env.scopeId, po: po.id, secret: secret.secretId, apiKey: key.id });
    }
    const key = await h.ok('POST', '/v1/api-keys', { scopeId: a.tenant.scopeId, name: 'a-key' });
    keyA = key.key;
    keyAId = key.id;
    expect(keyA).toMatch(/^sgk_/);
  });
  afterAll(() => h?.sidecar.close());

  const snapshotOf = async () => JSON.stringify((await h.sidecar.store.snapshot()).records.map((r) => JSON.stringify(r)).sort());

  it("reads of tenant B's resources → 403 FORBIDDEN", async () => {
    const reads = [
      `/v1/tenants/${b.tenant.id}`,
      `/v1/workspaces/${b.ws.id}`,
      `/v1/projects/${b.project.id}`,
      `/v1/environments/${bIds.env}`,
      `/v1/scopes/${b.tenant.scopeId}`,
      `/v1/scopes/${b.scope.accessScopeId}`,
      `/v1/roles/${bIds.role}`,
      `/v1/permissions/${bIds.perm}`,
      `/v1/role-permissions/${bIds.link}`,
      `/v1/users/${bIds.user}`,
      `/v1/memberships/${bIds.membership}`,
      `/v1/role-assignments/${bIds.ra}`,
      `/v1/scope-overrides/permissions/${bIds.po}`,
      `/v1/api-keys/${bIds.apiKey}`,
      `${b.base}/scopes`,
      `${b.base}/scopes/${b.scope.accessScopeId}`,
      `${b.base}/actors`,
      `${b.base}/actors/${b.actor.actorId}`,
      `${b.base}/actors/${b.actor.actorId}/secrets`,
      `${b.base}/apps`,
    ];
    for (const path of reads) {
      const r = await h.api('GET', path, undefined, keyA);
      expect(r.status, `GET ${path}`).toBe(403);
      expect(r.body.error.code, `GET ${path}`).toBe('FORBIDDEN');
    }
    // Lists only show A.
    for (const [path, field] of [
      ['/v1/tenants', 'id'],
      ['/v1/scopes', 'tenantId'],
      ['/v1/roles', 'tenantId'],
      ['/v1/permissions', 'tenantId'],
      ['/v1/memberships', 'tenantId'],
      ['/v1/api-keys', 'tenantId'],
    ] as const) {
      const list = await h.ok('GET', `${path}?limit=1000`, undefined, keyA);
      expect(list.data.length, path).toBeGreaterThan(0);
      for (const item of list.data) expect(item[field], path).toBe(a.tenant.id);
      expect(JSON.stringify(list)).not.toContain(b.tenant.id);
    }
    const users = await h.ok('GET', '/v1/users?limit=1000', undefined, keyA);
    expect(users.data.map((u: any) => u.id)).not.toContain(bIds.user);
    // The audit log of a key is its own tenant's.
    const audit = await h.ok('GET', `/v1/audit?limit=1000&tenantId=${b.tenant.id}`, undefined, keyA);
    expect(audit.data.length).toBeGreaterThan(0);
    for (const e of audit.data) expect(e.tenantIds).toEqual([a.tenant.id]);
    expect(JSON.stringify(audit)).not.toContain(b.tenant.id);
    // API key hashes are never shown.
    const keys = await h.ok('GET', '/v1/api-keys', undefined, keyA);
    for (const k of keys.data) expect(k).not.toHaveProperty('hash');
  });

  it("patches and deletes of tenant B's resources → 403, and B is unchanged", async () => {
    const before = await snapshotOf();
    const writes: Array<[string, string, unknown?]> = [
      ['PATCH', `/v1/tenants/${b.tenant.id}`, { name: 'Pwned' }],
      ['PATCH', `/v1/workspaces/${b.ws.id}`, { name: 'Pwned' }],
      ['PATCH', `/v1/projects/${b.project.id}`, { name: 'Pwned' }],
      ['PATCH', `/v1/roles/${bIds.role}`, { name: 'Pwned' }],
      ['PATCH', `/v1/users/${bIds.user}`, { firstName: 'Pwned' }],
      ['PATCH', `/v1/users/${bIds.user}`, { defaultTenantId: a.tenant.id }],
      ['PATCH', `${b.base}/actors/${b.actor.actorId}`, { disabled: true }],
      ['PATCH', `${b.base}/apps/${b.app.appId}`, { mode: 'rbac' }],
      ['DELETE', `/v1/tenants/${b.tenant.id}?cascade=true`],
      ['DELETE', `/v1/workspaces/${b.ws.id}?cascade=true`],
      ['DELETE', `/v1/roles/${bIds.role}?cascade=true`],
      ['DELETE', `/v1/permissions/${bIds.perm}?cascade=true`],
      ['DELETE', `/v1/role-assignments/${bIds.ra}`],
      ['DELETE', `/v1/memberships/${bIds.membership}?cascade=true`],
      ['DELETE', `/v1/scope-overrides/permissions/${bIds.po}`],
      ['DELETE', `/v1/users/${bIds.user}?cascade=true`],
      ['DELETE', `/v1/api-keys/${bIds.apiKey}`],
      ['DELETE', `${b.base}/actors/${b.actor.actorId}?cascade=true`],
      ['DELETE', `${b.base}/actors/${b.actor.actorId}/secrets/${bIds.secret}`],
      ['DELETE', `${b.base}/apps/${b.app.appId}/actors/${b.actor.actorId}`],
      ['DELETE', `${b.base}/apps/${b.app.appId}?cascade=true`],
      // Creating things in B, or credentials for B's actors.
      ['POST', '/v1/workspaces', { tenantId: b.tenant.id, name: 'Pwned' }],
      ['POST', '/v1/roles/batch', [{ scopeId: b.project.scopeId, name: 'Pwned' }]],
      ['POST', '/v1/permissions', { scopeId: b.project.scopeId, action: '*', resourceType: '*' }],
      ['POST', '/v1/role-permissions', { roleId: bIds.role, permissionId: bIds.perm }],
      ['POST', '/v1/memberships', { subjectId: a.actor.subjectId, scopeId: b.project.scopeId }],
      ['POST', '/v1/scope-overrides/permissions', { childScopeId: bIds.envScope, permissionId: bIds.perm, state: 'enabled' }],
      ['POST', '/v1/api-keys', { scopeId: b.tenant.scopeId, name: 'escalate' }],
      ['POST', `${b.base}/scopes`, { slug: 'pwned', name: 'Pwned' }],
      ['POST', `${b.base}/actors`, { name: 'pwned' }],
      ['POST', `${b.base}/actors/${b.actor.actorId}/tokens`, {}],
      ['POST', `${b.base}/actors/${b.actor.actorId}/secrets`],
      ['POST', `${b.base}/apps/${b.app.appId}/actors`, { actorId: b.actor.actorId }],
    ];
    for (const [method, path, body] of writes) {
      const r = await h.api(method, path, body, keyA);
      expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).toBe(403);
      expect(r.body.error.code).toBe('FORBIDDEN');
      expect(r.body).not.toHaveProperty('token');
      expect(r.body).not.toHaveProperty('secret');
    }
    // Links from A to B's records: refused (403 or 422), never stored.
    const links: Array<[string, string, unknown]> = [
      ['POST', '/v1/role-assignments', { roleId: bIds.role, membershipId: bIds.membership }],
      ['POST', '/v1/role-permissions', { roleId: bIds.role, permissionId: bIds.perm }],
      ['PATCH', `${a.base}/actors/${a.actor.actorId}`, { accessScopeId: b.scope.accessScopeId }],
      ['POST', `${a.base}/apps/${a.app.appId}/actors`, { actorId: b.actor.actorId }],
      ['POST', '/v1/memberships', { subjectId: b.actor.subjectId, scopeId: a.project.scopeId }],
      ['POST', '/v1/scopes', { parentScopeId: b.project.scopeId, typeId: 'type_environment', name: 'x' }],
      ['POST', '/v1/projects', { tenantId: a.tenant.id, workspaceId: b.ws.id, name: 'x' }],
    ];
    for (const [method, path, body] of links) {
      const r = await h.api(method, path, body, keyA);
      expect([403, 422], `${method} ${path}: ${JSON.stringify(r.body)}`).toContain(r.status);
    }
    expect(await snapshotOf()).toBe(before);
    // B, read with the root token, is as it was.
    expect((await h.ok('GET', `/v1/tenants/${b.tenant.id}`)).name).toBe('Tenant tenant-b');
    expect((await h.ok('GET', `${b.base}/actors/${b.actor.actorId}`)).disabled).toBe(false);
  });

  it("evaluate for B's scopes and B's subjects → 403", async () => {
    const asks = [
      { actor: { subjectId: bIds.userSubject, subjectType: 'user' }, scopeId: b.project.scopeId, action: 'read', resource: { resourceType: 'doc' } },
      { actor: { subjectId: a.actor.subjectId, subjectType: 'actor' }, scopeId: b.project.scopeId, action: 'read', resource: { resourceType: 'doc' } },
      { actor: { subjectId: bIds.userSubject, subjectType: 'user' }, scopeId: a.project.scopeId, action: 'read', resource: { resourceType: 'doc' } },
      { actor: { subjectId: b.actor.subjectId, subjectType: 'actor' }, scopeId: a.scope.accessScopeId, action: 'publish', resource: { resourceType: 'topic', resourceId: 'telemetry/x' } },
    ];
    for (const body of asks) {
      for (const path of ['/v1/evaluate', '/v1/evaluate?explain=true']) {
        const r = await h.api('POST', path, body, keyA);
        expect(r.status, `${path} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`).toBe(403);
        expect(r.body.error.code).toBe('FORBIDDEN');
        expect(JSON.stringify(r.body)).not.toContain(bIds.membership);
      }
    }
    // A person in both tenants as the root's global identity (tenant users stay in their tenant) may be asked
    // about in A, but the trace never shows the key B's membership.
    const both = await h.ok('POST', '/v1/users', { kindeId: 'kp_both', email: 'both@example.com' });
    const inA = await h.ok('POST', '/v1/memberships', { subjectId: both.subjectId, scopeId: a.project.scopeId });
    const inB = await h.ok('POST', '/v1/memberships', { subjectId: both.subjectId, scopeId: b.project.scopeId });
    const ask = { actor: { subjectId: both.subjectId, subjectType: 'user' }, scopeId: a.project.scopeId, action: 'read', resource: { resourceType: 'doc' } };
    const asRoot = await h.ok('POST', '/v1/evaluate?explain=true', ask);
    expect(JSON.stringify(asRoot.trace)).toContain(inB.id);
    const asKey = await h.ok('POST', '/v1/evaluate?explain=true', ask, keyA);
    expect(asKey.decision).toBe(asRoot.decision);
    expect(JSON.stringify(asKey)).toContain(inA.id);
    expect(JSON.stringify(asKey)).not.toContain(inB.id);
    expect(JSON.stringify(asKey)).not.toContain(b.tenant.id);

    const batch = await h.ok('POST', '/v1/evaluate/batch?explain=true', { requests: asks }, keyA);
    for (const item of batch.results) expect(item.error?.code).toBe('FORBIDDEN');
    expect(JSON.stringify(batch)).not.toContain(bIds.membership);
  });

  it("tenant A's resources work with A's key", async () => {
    expect((await h.ok('GET', `/v1/tenants/${a.tenant.id}`, undefined, keyA)).id).toBe(a.tenant.id);
    expect((await h.ok('PATCH', `/v1/tenants/${a.tenant.id}`, { name: 'A renamed' }, keyA)).name).toBe('A renamed');
    const ws = await h.ok('POST', '/v1/workspaces', { tenantId: a.tenant.id, name: 'By key' }, keyA);
    const role = (await h.ok('POST', '/v1/roles/batch', [{ scopeId: a.project.scopeId, name: 'Publisher' }], keyA)).data[0];
    const perm = (await h.ok('POST', '/v1/permissions/batch', [{ scopeId: a.project.scopeId, action: 'publish', resourceType: 'topic', resourcePattern: 'telemetry/#' }], keyA)).data[0];
    await h.ok('POST', '/v1/role-permissions', { roleId: role.id, permissionId: perm.id }, keyA);
    const m = await h.ok('POST', '/v1/memberships', { subjectId: a.actor.subjectId, scopeId: a.scope.accessScopeId }, keyA);
    await h.ok('POST', '/v1/role-assignments', { roleId: role.id, membershipId: m.id }, keyA);
    const d = await h.ok('POST', '/v1/evaluate?explain=true', { actor: { subjectId: a.actor.subjectId, subjectType: 'actor' }, scopeId: a.scope.accessScopeId, action: 'publish', resource: { resourceType: 'topic', resourceId: 'telemetry/speed' } }, keyA);
    expect(d.decision).toBe('ALLOWED');
    const token = await h.ok('POST', `${a.base}/actors/${a.actor.actorId}/tokens`, {}, keyA);
    expect(token.token.split('.')).toHaveLength(3);
    const secret = await h.ok('POST', `${a.base}/actors/${a.actor.actorId}/secrets`, undefined, keyA);
    expect((await h.connect(a.actor.actorId, secret.secret)).decision).toBe('allowed');
    await h.ok('DELETE', `/v1/workspaces/${ws.id}`, undefined, keyA);
    // A key cannot use the broker API, and a deleted key stops working at once.
    expect((await h.api('POST', '/v1/broker/connect', { clientId: 'c', username: a.actor.actorId, password: secret.secret }, keyA)).status).toBe(401);
    const temp = await h.ok('POST', '/v1/api-keys', { scopeId: a.project.scopeId, name: 'temp' }, keyA);
    expect((await h.api('GET', `/v1/projects/${a.project.id}`, undefined, temp.key)).status).toBe(200);
    // A project-level key does not reach up to its tenant.
    expect((await h.api('GET', `/v1/tenants/${a.tenant.id}`, undefined, temp.key)).status).toBe(403);
    expect((await h.api('PATCH', `/v1/tenants/${a.tenant.id}`, { name: 'x' }, temp.key)).status).toBe(403);
    await h.ok('DELETE', `/v1/api-keys/${temp.id}`, undefined, keyA);
    expect((await h.api('GET', `/v1/projects/${a.project.id}`, undefined, temp.key)).status).toBe(401);
    // What the key did is in the audit log under the key's id.
    const audit = await h.ok('GET', '/v1/audit?limit=50', undefined, keyA);
    const byKey = audit.data.filter((e: any) => e.principal === keyAId).map((e: any) => e.action);
    expect(byKey).toEqual(expect.arrayContaining(['tenant.update', 'workspace.create', 'workspace.delete', 'role.batch_create', 'actor_secret.create', 'api_key.create', 'api_key.delete']));
  });
});
