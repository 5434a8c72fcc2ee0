/**
 * Redis connections during an outage (shared/redis-connection.ts and the persistence adapter): a Redis command
 * that fails while Redis is away must reach whoever waits for it, and end nothing when nobody does. Found in
 * use: aedes-persistence-redis sends some commands without awaiting them, and Aedes' CONNECT handler leaves a
 * failed will deletion unhandled; either ended a broker when Redis was SIGKILLed under load.
 */
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createRedisPersistence } from '../broker/redis-persistence.ts';
import { connectRedis, isReady, type RedisConnection } from '../shared/redis-connection.ts';
import { parseRedisUrl, type RedisTarget } from '../shared/redis-target.ts';
import { startRedis, uniquePrefix, type RedisHandle } from './helpers/redis-server.ts';

const logger = pino({ level: 'silent' });
let redis: RedisHandle;
let conn: RedisConnection;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});
beforeEach(async () => {
  unhandled.length = 0;
  process.on('unhandledRejection', onUnhandled);
  conn = connectRedis(parseRedisUrl(redis.url) as RedisTarget, { name: 'test', logger, keyPrefix: uniquePrefix('conn') });
  await conn.ping();
});
afterEach(async () => {
  process.off('unhandledRejection', onUnhandled);
  conn.disconnect();
  await redis.restart().catch(() => undefined);
});

/** Waits until every command queued while Redis is away has been rejected (one failed reconnect). */
const untilRejected = (p: Promise<unknown>) => p.then(() => 'resolved', (err: Error) => err.message);

describe('a Redis connection while Redis is down', () => {
  it('rejects an awaited command, and a command nobody awaits ends nothing', async () => {
    await redis.kill();
    conn.lrem('list', 0, 'nobody-waits'); // as aedes-persistence-redis does in putWill/delWill
    const awaited = await untilRejected(conn.get('k'));
    expect(awaited).not.toBe('resolved');
    await new Promise((r) => setTimeout(r, 50)); // unhandled rejections are reported after the microtask queue
    expect(unhandled).toEqual([]);
    expect(isReady(conn)).toBe(false);
  });

  it("a will deletion Aedes' CONNECT handler leaves unhandled (`delWill(…).finally(…)`) ends nothing", async () => {
    const persistence = createRedisPersistence(conn, '') as { delWill(client: { id: string; brokerId: string }): Promise<unknown> };
    await redis.kill();
    // Exactly what Aedes 1.2's storeWill does with the promise.
    let finallyRan = false;
    void persistence.delWill({ id: 'device-1', brokerId: 'b1' }).finally(() => {
      finallyRan = true;
    });
    for (let waited = 0; !finallyRan && waited < 5_000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    expect(finallyRan).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
    expect(unhandled).toEqual([]);
  });
});
