/**
 * Users log in over MQTT with JWTs of a configured identity provider: a real JWKS served over HTTP, a sidecar
 * configured to trust it, an actor standing for the user (`externalSubject` = the provider's `sub`), and the
 * broker deciding the CONNECT.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBrokerConfig } from '../broker/config.ts';
import { startBroker, type RunningBroker } from '../broker/server.ts';
import { createSidecar } from '../authz-sidecar/sidecar.ts';
import { LoginThrottle } from '../authz-sidecar/credentials/login-throttle.ts';
import { MemoryPolicyStore } from '../authz-sidecar/store/memory-policy-store.ts';
import { ScopeGateClient } from '../client/index.ts';
import { connackCode, connect } from './helpers/mqtt.ts';
import { createProject } from './helpers/system.ts';

const ISSUER = 'https://idp.example.test/';
const AUDIENCE = 'scopegate-mqtt-users';
let jwksServer: Server;
let privateKey: CryptoKey;
let otherKey: CryptoKey;
let sidecar: Awaited<ReturnType<typeof createSidecar>>;
let broker: RunningBroker;
let sg: ScopeGateClient;
let mqttUrl: string;
let alice: { actorId: string };

beforeAll(async () => {
  const pair = await generateKeyPair('RS256');
  privateKey = pair.privateKey as CryptoKey;
  otherKey = (await generateKeyPair('RS256')).privateKey as CryptoKey;
  const jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'idp-key-1', alg: 'RS256', use: 'sig' }] };
  jwksServer = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks)));
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', () => r()));
  const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/.well-known/jwks.json`;

  // The login throttle is made generous here: this file sends many refused logins from one address on
  // purpose, and each must be refused for its own reason, not because of the throttle (tested elsewhere).
  sidecar = await createSidecar({
    store: new MemoryPolicyStore(),
    adminToken: 'idp-admin-token-0123456789',
    brokerToken: 'idp-broker-token-0123456789',
    trustedIssuer: { issuer: ISSUER, jwksUrl, audience: AUDIENCE },
    throttle: new LoginThrottle({ freeAttempts: 1_000 }),
  });
  const url = `http://127.0.0.1:${await sidecar.listen(0)}`;
  broker = await startBroker(loadBrokerConfig({ MQTT_PORT: '0', MQTT_WS_PORT: '0', MQTT_HOST: '127.0.0.1', SIDECAR_URL: url, BROKER_TOKEN: 'idp-broker-token-0123456789' }), { metricsPort: null, logger: pino({ level: 'silent' }) });
  await broker.live.ready;
  mqttUrl = `mqtt://127.0.0.1:${broker.tcpPort}`;
  sg = new ScopeGateClient({ baseUrl: url, token: 'idp-admin-token-0123456789' });

  const { api } = await createProject(sg, 'idp');
  const scope = await api.scopes.create({ slug: 'acme-corp', name: 'Acme' });
  const app = await api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
  const actor = await api.actors.create({ name: 'user-alice', accessScopeId: scope.accessScopeId, externalSubject: 'kp_alice' });
  expect(actor).toMatchObject({ externalSubject: 'kp_alice' });
  await api.apps.grant(app.appId, actor.actorId);
  alice = { actorId: actor.actorId };
});
afterAll(async () => {
  await broker?.close();
  await sidecar?.close();
  jwksServer?.close();
});

function idpToken(claims: { sub?: string; iss?: string; aud?: string; expSeconds?: number; key?: CryptoKey; kid?: string } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'RS256', kid: claims.kid ?? 'idp-key-1' })
    .setSubject(claims.sub ?? 'kp_alice')
    .setIssuer(claims.iss ?? ISSUER)
    .setAudience(claims.aud ?? AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + (claims.expSeconds ?? 600))
    .sign(claims.key ?? privateKey);
}

describe('MQTT login with a trusted issuer’s JWT', () => {
  it('accepts the user’s token for the actor that stands for the user, in that actor’s scope', async () => {
    const c = await connect(mqttUrl, alice.actorId, await idpToken());
    expect(await c.subscribe('my-app/inbox')).toEqual([0]);
    await c.publish('my-app/inbox', 'hi');
    expect((await c.next()).topic).toBe('my-app/inbox');
    await c.end();
  });

  it('refuses other subjects, issuers, audiences, keys, expired tokens and actors without an external subject (CONNACK 4)', async () => {
    expect(await connackCode(mqttUrl, alice.actorId, await idpToken({ sub: 'kp_mallory' }))).toBe(4);
    expect(await connackCode(mqttUrl, alice.actorId, await idpToken({ iss: 'https://evil.example/' }))).toBe(4);
    expect(await connackCode(mqttUrl, alice.actorId, await idpToken({ aud: 'someone-else' }))).toBe(4);
    expect(await connackCode(mqttUrl, alice.actorId, await idpToken({ key: otherKey }))).toBe(4);
    expect(await connackCode(mqttUrl, alice.actorId, await idpToken({ expSeconds: -60 }))).toBe(4);
    expect(await connackCode(mqttUrl, alice.actorId, await idpToken({ kid: 'unknown-kid' }))).toBe(4);
    const { api } = await createProject(sg, 'idp-2');
    const plain = await api.actors.create({ name: 'device-without-user' });
    expect(await connackCode(mqttUrl, plain.actorId, await idpToken())).toBe(4);
  });

  it('still accepts the sidecar’s own tokens', async () => {
    const { api } = await createProject(sg, 'idp-3');
    const app = await api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
    const device = await api.actors.create({ name: 'device' });
    await api.apps.grant(app.appId, device.actorId);
    const { token } = await api.actors.issueToken(device.actorId);
    expect(await connackCode(mqttUrl, device.actorId, token)).toBe(0);
  });
});
