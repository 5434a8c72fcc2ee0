import { afterAll, beforeAll, describe } from 'vitest';
import { MemorySessionLedger } from '../authz-sidecar/ledger/memory-session-ledger.ts';
import { RedisSessionLedger } from '../authz-sidecar/ledger/redis-session-ledger.ts';
import { createRedisClient } from '../authz-sidecar/store/redis-policy-store.ts';
import { startRedis, uniquePrefix, type RedisHandle } from './helpers/redis-server.ts';
import { sessionLedgerContract } from './session-ledger-contract.ts';

sessionLedgerContract('MemorySessionLedger', async () => {
  const clock = { now: 1_000_000 };
  const ledger = new MemorySessionLedger(() => clock.now);
  return { ledger, sibling: ledger, clock, done: () => ledger.close() };
});

describe('RedisSessionLedger', () => {
  let redis: RedisHandle;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  sessionLedgerContract('two sidecars on one Redis', async () => {
    const clock = { now: 1_000_000 };
    const prefix = uniquePrefix('ledger');
    const a = createRedisClient(redis.url);
    const b = createRedisClient(redis.url);
    const ledger = new RedisSessionLedger({ redis: a, prefix, now: () => clock.now });
    const sibling = new RedisSessionLedger({ redis: b, prefix, now: () => clock.now });
    return {
      ledger,
      sibling,
      clock,
      done: async () => {
        await ledger.close();
        await sibling.close();
        a.disconnect();
        b.disconnect();
      },
    };
  });
});
