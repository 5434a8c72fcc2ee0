/**
 * Issue 11, item 11: the login throttle turned against the holder of valid credentials, over real sockets.
 * Before: six bad CONNECTs from another address, using only the victim's actor id, locked the victim's valid
 * token out (CONNACK 4), and WebSocket clients carried no address at all. Now the username block is keyed per
 * address, and a WebSocket client's address is its peer's, or `x-forwarded-for` from a trusted proxy only.
 */
import { createConnection } from 'node:net';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connackCode } from './helpers/mqtt.ts';
import { createActor, createProject, startSystem, startTestBroker, type TestBroker, type TestSystem } from './helpers/system.ts';

/** The CONNACK code of one CONNECT over TCP from `localAddress` (the loopback has all of 127/8). */
function connackFrom(port: number, localAddress: string, username: string, password: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const client = new mqtt.MqttClient(() => createConnection({ host: '127.0.0.1', port, localAddress }), {
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 5_000,
      clientId: `t-${Math.random().toString(16).slice(2)}`,
      username,
      password,
    });
    client.once('connect', () => client.end(true, () => resolve(0)));
    client.once('error', (err) => {
      client.end(true);
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'number') resolve(code);
      else reject(err);
    });
  });
}

/** The CONNACK code of one CONNECT over WebSocket, with request headers (x-forwarded-for). */
const connackWs = (url: string, username: string, password: string, headers: Record<string, string>) => connackCode(url, username, password, { wsOptions: { headers } });

describe('login throttle abuse', () => {
  let sys: TestSystem;
  let proxied: TestBroker;
  let victim: { actorId: string; token: string };
  let bystander: { actorId: string; token: string };
  beforeAll(async () => {
    sys = await startSystem();
    // A second broker behind a "reverse proxy" on the loopback: it believes 127.0.0.1's x-forwarded-for.
    proxied = await startTestBroker(sys.side.url, sys.side.brokerToken, { trustedProxies: ['127.0.0.1'] });
    const p = await createProject(sys.sg, 'throttle-abuse');
    const scope = await p.api.scopes.create({ slug: 'site', name: 'Site' });
    const app = await p.api.apps.create({ slug: 'telemetry', name: 'Telemetry' });
    victim = await createActor(p.api, 'victim', scope.accessScopeId, [app.appId]);
    bystander = await createActor(p.api, 'bystander', scope.accessScopeId, [app.appId]);
  }, 60_000);
  afterAll(async () => {
    await proxied?.close();
    await sys?.close();
  });

  it('over TCP: failures with the victim’s actor id from another address do not lock the victim out', async () => {
    const port = sys.broker.broker.tcpPort;
    for (let i = 0; i < 7; i++) expect(await connackFrom(port, '127.0.0.2', victim.actorId, `wrong-${i}`)).toBe(4);
    // The attacker's address is slowed down: even the right token is not checked from there.
    expect(await connackFrom(port, '127.0.0.2', victim.actorId, victim.token)).toBe(4);
    expect(await connackFrom(port, '127.0.0.2', bystander.actorId, bystander.token)).toBe(4);
    // The holder of the token, from its own address, connects.
    expect(await connackFrom(port, '127.0.0.3', victim.actorId, victim.token)).toBe(0);
  });

  it('over WebSocket: the client address from a trusted proxy is throttled, the victim behind the same proxy is not', async () => {
    const attacker = { 'x-forwarded-for': '203.0.113.66' };
    for (let i = 0; i < 7; i++) expect(await connackWs(proxied.wsUrl, victim.actorId, `wrong-${i}`, attacker)).toBe(4);
    expect(await connackWs(proxied.wsUrl, bystander.actorId, bystander.token, attacker)).toBe(4);
    expect(await connackWs(proxied.wsUrl, victim.actorId, victim.token, { 'x-forwarded-for': '198.51.100.7' })).toBe(0);
    // A chain: the client is the right-most address that is not a trusted proxy.
    expect(await connackWs(proxied.wsUrl, bystander.actorId, bystander.token, { 'x-forwarded-for': '198.51.100.8, 203.0.113.66' })).toBe(4);
    expect(await connackWs(proxied.wsUrl, bystander.actorId, bystander.token, { 'x-forwarded-for': '203.0.113.66, 198.51.100.8' })).toBe(0);
  });

  it('over WebSocket without a trusted proxy: x-forwarded-for is ignored, the peer address is throttled', async () => {
    // A fresh system, so the loopback address starts with a clean record.
    const own = await startSystem();
    try {
      const p = await createProject(own.sg, 'spoof');
      const scope = await p.api.scopes.create({ slug: 'site', name: 'Site' });
      const app = await p.api.apps.create({ slug: 'telemetry', name: 'Telemetry' });
      const device = await createActor(p.api, 'device', scope.accessScopeId, [app.appId]);
      // Each failure claims another address; the broker trusts none of them.
      for (let i = 0; i < 7; i++) expect(await connackWs(own.broker.wsUrl, device.actorId, 'wrong', { 'x-forwarded-for': `192.0.2.${i + 1}` })).toBe(4);
      expect(await connackWs(own.broker.wsUrl, device.actorId, device.token, { 'x-forwarded-for': '192.0.2.200' })).toBe(4);
      // Over TCP from another loopback address the device connects.
      expect(await connackFrom(own.broker.broker.tcpPort, '127.0.0.4', device.actorId, device.token)).toBe(0);
    } finally {
      await own.close();
    }
  });
});
