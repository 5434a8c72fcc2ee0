/**
 * Issue 11, items 8 and 13: what an attacker can take from the broker process itself.
 * - 1,500 CONNECTs with valid credentials, each closing its socket at once, leave no session behind
 *   (before the fix: 1,500 phantom sessions in /readyz and the tenant gauge, ~10 KiB each).
 * - The unauthenticated metrics port (every tenant id with its client count) is bound to loopback by default.
 */
import { createConnection } from 'node:net';
import { networkInterfaces } from 'node:os';
import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mapLimit } from './helpers/faults.ts';
import { connect } from './helpers/mqtt.ts';
import { createActor, createProject, startSystem, startTestBroker, type TestSystem } from './helpers/system.ts';

let sys: TestSystem;
let metricsUrl: string;
beforeAll(async () => {
  sys = await startSystem();
  metricsUrl = `http://127.0.0.1:${sys.broker.broker.metricsPort}`;
});
afterAll(() => sys?.close());

/** Writes one CONNECT and closes the socket right after it was flushed, without waiting for CONNACK. */
function connectAndClose(port: number, username: string, password: string, clientId: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' }, () => {
      const packet = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 60, username, password: Buffer.from(password) });
      socket.end(packet);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
  });
}

async function readyzClients(): Promise<number> {
  return ((await (await fetch(`${metricsUrl}/readyz`)).json()) as { clients: number }).clients;
}
async function tenantGauge(tenantId: string): Promise<number> {
  const text = await (await fetch(`${metricsUrl}/metrics`)).text();
  const m = new RegExp(`^scopegate_broker_connected_clients\\{tenant="${tenantId}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

describe('CONNECTs closed before CONNACK', () => {
  it('leave no session: /readyz, the tenant gauge and Aedes’ client count return to 0', async () => {
    const { api, orgId } = await createProject(sys.sg, 'phantoms');
    const scope = await api.scopes.create({ slug: 'acme-corp', name: 'Acme' });
    const app = await api.apps.create({ slug: 'app', name: 'App', mode: 'open' });
    const actor = await createActor(api, 'flooder', scope.accessScopeId, [app.appId]);
    await mapLimit(Array.from({ length: 1_500 }, (_, i) => i), 100, (i) => connectAndClose(sys.broker.broker.tcpPort, actor.actorId, actor.token, `phantom-${i}`));

    // A real session after the flood, so "0" is not read before the broker has handled the CONNECTs: the
    // sidecar answers CONNECTs in order, and this one is counted once it is connected.
    const real = await connect(sys.url, actor.actorId, actor.token);
    await expect.poll(readyzClients, { timeout: 10_000, interval: 100 }).toBe(1);
    expect(await tenantGauge(orgId)).toBe(1);
    await real.end();
    await expect.poll(readyzClients, { timeout: 5_000, interval: 50 }).toBe(0);
    expect(await tenantGauge(orgId)).toBe(0);
    await expect.poll(() => sys.broker.broker.aedes.connectedClients, { timeout: 5_000, interval: 50 }).toBe(0);
  }, 90_000);
});

describe('metrics port', () => {
  const external = Object.values(networkInterfaces())
    .flat()
    .filter((a) => a && !a.internal && a.family === 'IPv4')
    .map((a) => a!.address);

  it('answers on loopback', async () => {
    expect((await fetch(`${metricsUrl}/metrics`)).status).toBe(200);
  });

  it.skipIf(external.length === 0)('is not reachable on the host’s other addresses by default, while MQTT is', async () => {
    // MQTT on every address (the production default), metrics port left to its default.
    const open = await startTestBroker(sys.side.url, sys.side.brokerToken, { host: '0.0.0.0' });
    const reach = (url: string) =>
      fetch(url, { signal: AbortSignal.timeout(2_000) }).then(
        () => true,
        () => false,
      );
    try {
      for (const address of external) {
        expect(await reach(`http://${address}:${open.broker.wsPort}/`), `MQTT over WebSocket on ${address}`).toBe(true);
        expect(await reach(`http://${address}:${open.broker.metricsPort}/metrics`), `metrics on ${address}`).toBe(false);
      }
      expect(await reach(`http://127.0.0.1:${open.broker.metricsPort}/metrics`)).toBe(true);
    } finally {
      await open.close();
    }
  });
});
