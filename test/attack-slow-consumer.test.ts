/**
 * Issue 11, item 3: one subscriber that stops reading must not freeze delivery for anybody else. Tenant A
 * subscribes `chat/#`, stops reading its socket and floods its own topic with 64 KiB messages; tenant B's
 * messages must keep arriving meanwhile (before the fix nothing arrived for tens of seconds: Aedes' emitter
 * waited for the stalled socket to drain). The stalled client's QoS 0 deliveries are dropped once its own
 * outgoing buffer is full, and a QoS 1 delivery then disconnects it. Speed is measured by the bench
 * (`bench/slow-consumer.ts`); here the bound is only a liveness limit.
 */
import { createConnection, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from './helpers/mqtt.ts';
import { createActor, createProject, startSystem, type TestSystem } from './helpers/system.ts';

let sys: TestSystem;
beforeAll(async () => {
  sys = await startSystem();
});
afterAll(() => sys?.close());

/** A raw MQTT client that subscribes, then never reads its socket again. */
function stalledSubscriber(port: number, username: string, password: string, filter: string): Promise<{ socket: Socket; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('error', () => undefined);
    socket.on('data', (chunk) => parser.parse(chunk));
    parser.on('packet', (packet) => {
      if (packet.cmd === 'connack') {
        if (packet.returnCode !== 0) return reject(new Error(`CONNACK ${packet.returnCode}`));
        socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos: 1 }] }));
      } else if (packet.cmd === 'suback') {
        // From here on nothing is read: the kernel buffers fill, then the broker's buffer for this client.
        socket.removeAllListeners('data');
        socket.pause();
        resolve({ socket, closed });
      }
    });
    socket.once('connect', () =>
      socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'stalled', keepalive: 0, username, password: Buffer.from(password) })),
    );
  });
}

describe('a subscriber that stops reading', () => {
  it('delays no other tenant; its QoS 0 deliveries are dropped, and a QoS 1 delivery disconnects it', async () => {
    const a = await createProject(sys.sg, 'slow-a');
    const b = await createProject(sys.sg, 'slow-b');
    const worlds = await Promise.all(
      [a, b].map(async ({ api }) => {
        const scope = await api.scopes.create({ slug: 'team', name: 'Team' });
        const app = await api.apps.create({ slug: 'chat', name: 'Chat', mode: 'open' });
        return { sub: await createActor(api, 'sub', scope.accessScopeId, [app.appId]), pub: await createActor(api, 'pub', scope.accessScopeId, [app.appId]) };
      }),
    );
    const [wa, wb] = worlds as [(typeof worlds)[0], (typeof worlds)[0]];
    const stalled = await stalledSubscriber(sys.broker.broker.tcpPort, wa.sub.actorId, wa.sub.token, 'chat/#');
    const floodA = await connect(sys.url, wa.pub.actorId, wa.pub.token);
    const subB = await connect(sys.url, wb.sub.actorId, wb.sub.token);
    const pubB = await connect(sys.url, wb.pub.actorId, wb.pub.token);
    await subB.subscribe('chat/quiet', 1);

    // 400 × 64 KiB (the 200, doubled so that the kernel's socket buffers cannot absorb it all).
    const payload = Buffer.alloc(64 * 1024, 120).toString();
    for (let i = 0; i < 400; i++) await floodA.publish('chat/flood', payload, { qos: 0 });

    // Tenant B, while A's subscriber is still stalled and connected.
    for (let i = 0; i < 5; i++) await pubB.publish('chat/quiet', `quiet ${i}`, { qos: 1 });
    await subB.next((m) => m.payload === 'quiet 4', 5_000);
    expect(subB.messages.map((m) => m.payload)).toEqual(['quiet 0', 'quiet 1', 'quiet 2', 'quiet 3', 'quiet 4']);
    expect(stalled.socket.destroyed).toBe(false);
    const metrics = await (await fetch(`http://127.0.0.1:${sys.broker.broker.metricsPort}/metrics`)).text();
    expect(Number(/^scopegate_broker_slow_consumer_drops_total (\d+)/m.exec(metrics)?.[1] ?? 0)).toBeGreaterThan(0);

    // A QoS 1 delivery to the full client closes its connection: once it reads again, what was buffered
    // ends with the end of the connection (a client still connected would just keep receiving).
    await floodA.publish('chat/important', 'qos1', { qos: 1 });
    await expect.poll(async () => Number(/^scopegate_broker_sessions_closed_total\{reason="slow_consumer"\} (\d+)/m.exec(await (await fetch(`http://127.0.0.1:${sys.broker.broker.metricsPort}/metrics`)).text())?.[1] ?? 0), { timeout: 5_000, interval: 50 }).toBe(1);
    stalled.socket.on('data', () => undefined);
    stalled.socket.resume();
    await expect(Promise.race([stalled.closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('still open'), 5_000))])).resolves.toBe('closed');
    await Promise.all([floodA.end(), subB.end(), pubB.end()]);
  });
});
