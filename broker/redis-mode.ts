import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';

const require = createRequire(import.meta.url);

/**
 * Aedes persistence and emitter for Redis mode: aedes-persistence-redis (sessions, QoS 1/2 queues, retained
 * messages, wills) and mqemitter-redis (several brokers share traffic).
 *
 * aedes-persistence-redis 11 returns the retained-message lookup as an async iterable, while Aedes 1.x pipes
 * it as a stream (`stream.pipe`), which would close every connection that subscribes; the adapter wraps it
 * with Readable.from. Other stream-returning methods are consumed with pipeline/for-await, which accept both.
 */
export function redisPersistenceAndEmitter(url: string, logger: Logger): { persistence: unknown; mq: unknown; connections: Redis[] } {
  const AsyncRedisPersistence = require('aedes-persistence-redis/asyncPersistence.js');
  const MQEmitterRedis = require('mqemitter-redis');
  const conn = new Redis(url, { maxRetriesPerRequest: 2 });
  conn.on('error', (err) => logger.warn({ err: err.message }, 'redis (persistence) error'));
  const persistence = new AsyncRedisPersistence({ conn });
  const combi = persistence.createRetainedStreamCombi.bind(persistence) as (patterns: string[]) => AsyncIterable<unknown>;
  persistence.createRetainedStreamCombi = (patterns: string[]) => Readable.from(combi(patterns));
  persistence.createRetainedStream = (pattern: string) => Readable.from(combi([pattern]));
  const mq = MQEmitterRedis({ connectionString: url });
  return { persistence, mq, connections: [conn] };
}
