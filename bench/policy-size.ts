/**
 * The Redis memory the sidecar's policy data takes for a population of actors (argv[2], default 100,000),
 * each with a membership and a role in one of 50 access scopes, written through the real Writer onto a
 * RedisPolicyStore on a redis-server of its own. Why: on Redis Cluster every sidecar key shares one hash tag
 * (one slot, one master), which is fine only while policy data is small; this says how small. Prints one
 * JSON line: used_memory before and after, and MEMORY USAGE of each store key (records, change stream,
 * audit stream).
 */
import { RedisPolicyStore, createRedisClient } from '../authz-sidecar/store/redis-policy-store.ts';
import { startRedis } from '../scripts/redis-server.ts';
import { buildActorWorld } from './engine-bench.ts';

const actors = Number(process.argv[2] ?? 100_000);
const redis = await startRedis();
const prefix = '{sg:}';
const conn = createRedisClient(redis.url);
try {
  const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await conn.info('memory'))?.[1] ?? NaN);
  const before = await usedMemory();
  const store = new RedisPolicyStore({ redis: conn, prefix });
  const started = Date.now();
  const { replica } = await buildActorWorld(actors, store);
  const seconds = (Date.now() - started) / 1000;
  const after = await usedMemory();
  const keyBytes: Record<string, number> = {};
  for (const key of ['rec', 'seq', 'pseq', 'changes', 'audit']) keyBytes[key] = Number(await conn.call('MEMORY', 'USAGE', `${prefix}${key}`, 'SAMPLES', '0'));
  const records = Number(await conn.hlen(`${prefix}rec`));
  replica.stop();
  process.stdout.write(
    `${JSON.stringify({ actors, records, usedMemoryBytes: after - before, keyBytes, bytesPerActor: Math.round((after - before) / actors), recordsBytesPerActor: Math.round((keyBytes.rec ?? 0) / actors), writeSeconds: seconds })}\n`,
  );
} finally {
  conn.disconnect();
  await redis.stop();
}
process.exit(0);
