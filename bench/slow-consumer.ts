import { createConnection, type Socket } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { percentile, round, sleep } from './lib.ts';
import { startScopeGate } from './system.ts';

/**
 * A quiet tenant's latency while another tenant's subscriber stops reading (issue 11, item 3).
 *
 * Tenant A floods its own topic with 64 KiB messages; its subscriber either reads normally ("without") or
 * stops reading its socket after subscribing ("with a stalled subscriber"). Meanwhile tenant B publishes a
 * small QoS 0 message every few milliseconds and measures publish→deliver latency. The rounds alternate
 * between the two conditions on one broker; target: B's p99 with the stalled subscriber ≤ 1.5 × without.
 */
export async function runSlowConsumer(opts: { rounds: number; durationMs: number }) {
  const sut = await startScopeGate();
  const url = `mqtt://127.0.0.1:${sut.brokerPort}`;
  try {
    const make = async (slug: string) => {
      const t = await sut.sg.tenants.create({ name: slug, slug: `${slug}-${Math.random().toString(36).slice(2, 7)}`, kind: 'standard' });
      const ws = await sut.sg.workspaces.create({ tenantId: t.id, name: 'W' });
      const p = await sut.sg.projects.create({ tenantId: t.id, workspaceId: ws.id, name: 'P' });
      const api = sut.sg.project(t.id, p.id);
      const scope = await api.scopes.create({ slug: 'team', name: 'Team' });
      const app = await api.apps.create({ slug: 'chat', name: 'Chat', mode: 'open' });
      const actor = await api.actors.create({ name: 'a', kind: 'device', accessScopeId: scope.accessScopeId });
      await api.apps.grant(app.appId, actor.actorId);
      return { actorId: actor.actorId, token: (await api.actors.issueToken(actor.actorId, { ttlSeconds: 3_600 })).token };
    };
    const [a, b] = [await make('noisy'), await make('quiet')];
    const client = (who: { actorId: string; token: string }, id: string) =>
      mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, clientId: id, username: who.actorId, password: who.token });
    const flooder = await client(a, 'flooder');
    const quietPub = await client(b, 'quiet-pub');
    const quietSub = await client(b, 'quiet-sub');
    await quietSub.subscribeAsync('chat/quiet', { qos: 0 });

    const results = { without: [] as number[][], stalled: [] as number[][] };
    for (let r = 0; r < opts.rounds; r++) {
      for (const condition of ['without', 'stalled'] as const) {
        const noisySub = condition === 'stalled' ? await stalledSubscriber(sut.brokerPort, a) : await client(a, `reader-${r}`);
        if (!(noisySub instanceof Object && 'socket' in noisySub)) await (noisySub as MqttClient).subscribeAsync('chat/#', { qos: 0 });
        results[condition].push(await measureQuiet(quietPub, quietSub, flooder, opts.durationMs));
        if ('socket' in noisySub) noisySub.socket.destroy();
        else await (noisySub as MqttClient).endAsync(true);
        await sleep(200);
      }
    }
    await Promise.all([flooder.endAsync(true), quietPub.endAsync(true), quietSub.endAsync(true)]);
    const p99 = (rounds: number[][]) => percentile(rounds.flat().sort((x, y) => x - y), 99);
    const p50 = (rounds: number[][]) => percentile(rounds.flat().sort((x, y) => x - y), 50);
    const out = {
      withoutP50Ms: round(p50(results.without)),
      withoutP99Ms: round(p99(results.without)),
      stalledP50Ms: round(p50(results.stalled)),
      stalledP99Ms: round(p99(results.stalled)),
      samples: results.stalled.flat().length,
    };
    return { ...out, ratio: round(out.stalledP99Ms / out.withoutP99Ms, 3) };
  } finally {
    await sut.stop();
  }
}

/** B publishes every 5 ms for `durationMs` while A floods 64 KiB messages; returns B's latencies (ms). */
async function measureQuiet(pub: MqttClient, sub: MqttClient, flooder: MqttClient, durationMs: number): Promise<number[]> {
  const latencies: number[] = [];
  const onMessage = (_topic: string, payload: Buffer) => latencies.push(performance.now() - Number(payload.toString()));
  sub.on('message', onMessage);
  const big = Buffer.alloc(64 * 1024, 120);
  let flooding = true;
  const flood = (async () => {
    while (flooding) await flooder.publishAsync('chat/flood', big, { qos: 0 });
  })();
  const end = performance.now() + durationMs;
  while (performance.now() < end) {
    pub.publish('chat/quiet', String(performance.now()), { qos: 0 });
    await sleep(5);
  }
  flooding = false;
  await flood;
  await sleep(300);
  sub.off('message', onMessage);
  return latencies;
}

/** A raw client of tenant A that subscribes `chat/#` and then never reads its socket again. */
function stalledSubscriber(port: number, who: { actorId: string; token: string }): Promise<{ socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    socket.on('error', () => undefined);
    socket.on('data', (chunk) => parser.parse(chunk));
    parser.on('packet', (packet) => {
      if (packet.cmd === 'connack') {
        if (packet.returnCode !== 0) return reject(new Error(`CONNACK ${packet.returnCode}`));
        socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'chat/#', qos: 0 }] }));
      } else if (packet.cmd === 'suback') {
        socket.removeAllListeners('data');
        socket.pause();
        resolve({ socket });
      }
    });
    socket.once('connect', () =>
      socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: `stalled-${Math.random()}`, keepalive: 0, username: who.actorId, password: Buffer.from(who.token) })),
    );
  });
}
