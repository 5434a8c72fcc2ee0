/**
 * Wildcard routing cost through Redis (issue 9 §4): a quiet tenant's publish → deliver throughput over two
 * brokers on one Redis (publisher on broker A, subscriber on broker B, so every message crosses Redis),
 * alone and while a client of another tenant holds 20,000 wildcard subscriptions in its own namespace.
 * Target: with the wildcards ≥ 0.9 × the quiet tenant alone. Rounds alternate (alone, with, alone, with…)
 * and the median of each counts, so drift on a shared machine does not decide the ratio.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { startBrokerProcess, startSidecarProcess } from '../scripts/processes.ts';
import { startRedis } from '../scripts/redis-server.ts';
import { createActor, createProject } from '../scripts/world.ts';
import { ScopeGateClient } from '../client/index.ts';
import { ADMIN_TOKEN, BROKER_TOKEN } from './system.ts';
import { sleep } from './lib.ts';

export interface WildcardRoutingResult {
  aloneMsgsPerSecond: number;
  withWildcardsMsgsPerSecond: number;
  ratio: number;
  wildcardFilters: number;
  rounds: { alone: number[]; withWildcards: number[] };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function connectClient(url: string, username: string, password: string): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { protocolVersion: 4, username, password, reconnectPeriod: 0, connectTimeout: 30_000, keepalive: 300 });
    c.once('connect', () => resolve(c));
    c.once('error', reject);
  });
}

/** Messages delivered per second in one round: a pipelined QoS 0 stream with at most `window` in flight. */
async function round(pub: MqttClient, sub: MqttClient, ms: number, tag: string): Promise<number> {
  let received = 0;
  const onMessage = (_t: string, payload: Buffer) => {
    if (payload.toString().startsWith(tag)) received++;
  };
  sub.on('message', onMessage);
  const window = 200;
  let sent = 0;
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (sent - received < window) {
      pub.publish('quiet/load', `${tag}:${sent++}`, { qos: 0 });
      if (sent % 50 === 0) await new Promise((r) => setImmediate(r));
    } else await sleep(1);
  }
  const elapsed = (Date.now() - start) / 1000;
  await sleep(300);
  sub.off('message', onMessage);
  return received / elapsed;
}

export async function runWildcardRouting(roundMs: number, filters = 20_000): Promise<WildcardRoutingResult> {
  const redis = await startRedis();
  // The noisy client needs more filters than the default per-session limit (1,000).
  const env = { REDIS_URL: redis.url, AUTHZ_ADMIN_TOKEN: ADMIN_TOKEN, BROKER_TOKEN, LOG_LEVEL: 'info', MQTT_MAX_SUBSCRIPTIONS_PER_SESSION: String(filters + 100) };
  const sidecar = await startSidecarProcess(env);
  const [a, b] = await Promise.all([startBrokerProcess({ ...env, SIDECAR_URL: sidecar.url }), startBrokerProcess({ ...env, SIDECAR_URL: sidecar.url })]);
  const clients: MqttClient[] = [];
  try {
    const sg = new ScopeGateClient({ baseUrl: sidecar.url, token: ADMIN_TOKEN });
    const quietProject = await createProject(sg, 'quiet-tenant');
    const quietApp = await quietProject.api.apps.create({ slug: 'quiet', name: 'Quiet', mode: 'open' });
    const quietActor = await createActor(quietProject.api, 'quiet', null, [quietApp.appId]);
    const noisyProject = await createProject(sg, 'noisy-tenant');
    const noisyApp = await noisyProject.api.apps.create({ slug: 'noisy', name: 'Noisy', mode: 'open' });
    const noisyActor = await createActor(noisyProject.api, 'noisy', null, [noisyApp.appId]);

    const pub = await connectClient(`mqtt://127.0.0.1:${a.tcpPort}`, quietActor.actorId, quietActor.token);
    const sub = await connectClient(`mqtt://127.0.0.1:${b.tcpPort}`, quietActor.actorId, quietActor.token);
    clients.push(pub, sub);
    await sub.subscribeAsync('quiet/load', { qos: 0 });
    await round(pub, sub, 500, 'warmup');

    const alone: number[] = [];
    const withWildcards: number[] = [];
    let noisy: MqttClient | null = null;
    for (let r = 0; r < 3; r++) {
      if (noisy) {
        noisy.end(true);
        noisy = null;
        await sleep(500);
      }
      alone.push(await round(pub, sub, roundMs, `a${r}`));
      // The noisy tenant: one client with `filters` wildcard filters in its own namespace (on broker B).
      noisy = await connectClient(`mqtt://127.0.0.1:${b.tcpPort}`, noisyActor.actorId, noisyActor.token);
      clients.push(noisy);
      for (let i = 0; i < filters; i += 500) {
        await noisy.subscribeAsync(Array.from({ length: Math.min(500, filters - i) }, (_, j) => `noisy/d${i + j}/+/#`), { qos: 0 });
      }
      withWildcards.push(await round(pub, sub, roundMs, `w${r}`));
    }
    const aloneRate = median(alone);
    const withRate = median(withWildcards);
    return { aloneMsgsPerSecond: aloneRate, withWildcardsMsgsPerSecond: withRate, ratio: withRate / aloneRate, wildcardFilters: filters, rounds: { alone, withWildcards } };
  } finally {
    for (const c of clients) c.end(true);
    await Promise.all([a.stop(), b.stop()]);
    await sidecar.stop();
    await redis.stop();
  }
}
