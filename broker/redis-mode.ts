import { createRequire } from 'node:module';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { adaptRetainedStreams } from './aedes-internals.ts';

const require = createRequire(import.meta.url);

/**
 * Aedes persistence and emitter for Redis mode: aedes-persistence-redis (sessions, QoS 1/2 queues, retained
 * messages, wills) and mqemitter-redis (several brokers share traffic).
 * The retained-message lookup is adapted to what Aedes expects (see adaptRetainedStreams).
 */
export function redisPersistenceAndEmitter(url: string, logger: Logger): { persistence: unknown; mq: unknown; connections: Redis[] } {
  const AsyncRedisPersistence = require('aedes-persistence-redis/asyncPersistence.js');
  const MQEmitterRedis = require('mqemitter-redis');
  const conn = new Redis(url, { maxRetriesPerRequest: 2 });
  conn.on('error', (err) => logger.warn({ err: err.message }, 'redis (persistence) error'));
  const persistence = new AsyncRedisPersistence({ conn });
  adaptRetainedStreams(persistence);
  const mq = MQEmitterRedis({ connectionString: url });
  return { persistence, mq, connections: [conn] };
}
