import type { RedisConnection } from '../shared/redis-connection.ts';

/**
 * "Exactly one broker does this" across brokers sharing one Redis: a claim is a Redis SET NX with a TTL of
 * a minute (the things claimed — a shared-subscription delivery, a dead broker's will — happen within
 * seconds, and a claimer that died frees its claims by then). With one broker (in-memory mode) every claim
 * is won.
 */
export interface Claims {
  take(key: string): boolean | Promise<boolean>;
  /** Gives a claim back (the claimed work failed; another broker, or a later attempt, may do it). */
  release(key: string): Promise<void> | void;
}

const CLAIM_TTL_MS = 60_000;

/** Claims in Redis, under the data connection's keyPrefix (REDIS_BROKER_PREFIX) and `claim:`. */
export function redisClaims(redis: RedisConnection): Claims {
  return {
    take: (key) => redis.set(`claim:${key}`, '1', 'PX', CLAIM_TTL_MS, 'NX').then((r) => r === 'OK'),
    release: async (key) => {
      await redis.del(`claim:${key}`).catch(() => undefined);
    },
  };
}

export const localClaims: Claims = { take: () => true, release: () => undefined };
