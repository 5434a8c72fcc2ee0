import type { Aedes, AuthorizePublishHandler } from 'aedes';
import type { Logger } from 'pino';
import { RedisHealth, connectRedis, duplicateConnection, type RedisConnection } from '../shared/redis-connection.ts';
import type { RedisTarget } from '../shared/redis-target.ts';
import { ackAfterPublish } from './aedes-internals.ts';
import type { BrokerMetrics } from './metrics.ts';
import { createRedisPersistence } from './redis-persistence.ts';
import { RedisRouter } from './redis-router.ts';

export interface RedisMode {
  persistence: unknown;
  mq: RedisRouter;
  /** The data connection (keys under REDIS_BROKER_PREFIX), for other broker features that keep state in Redis. */
  data: RedisConnection;
  /** Whether every Redis connection of this broker is usable (CONNECT gate and /readyz). */
  health: RedisHealth;
  /** Wraps the publish authorizer so a QoS 1 PUBLISH is stored and routed before Aedes sends its PUBACK. */
  routeBeforeAck(authorize: AuthorizePublishHandler): AuthorizePublishHandler;
  /** Installs what needs the broker instance (publish failure handling); call once after createBroker. */
  attach(aedes: Aedes): void;
  connections: RedisConnection[];
}

/**
 * Redis mode of the broker: one data connection (keys under REDIS_BROKER_PREFIX) shared by
 * aedes-persistence-redis and the router's PUBLISHes, one subscriber connection for the router. Works on a
 * single Redis, a Sentinel-managed master and a Cluster alike (the connection module hides the difference).
 *
 * What a Redis outage does to MQTT traffic is decided here (mechanism: ackAfterPublish in aedes-internals.ts):
 * - QoS 1: PUBACK only after the message was stored and routed; if Redis refuses, no PUBACK, the connection
 *   is closed and the client re-sends after reconnecting.
 * - QoS 2: Aedes already stores, publishes, then sends PUBREC; a failure closes the connection.
 * - QoS 0: a message Redis refuses is dropped, counted in scopegate_broker_qos0_dropped_total; the
 *   connection stays.
 */
export function createRedisMode(target: RedisTarget, keyPrefix: string, logger: Logger, metrics: BrokerMetrics): RedisMode {
  const log = logger.child({ component: 'redis' });
  const data = connectRedis(target, { name: 'broker-data', logger: log, keyPrefix });
  const sub = duplicateConnection(data, 'broker-route-sub', log);
  const health = new RedisHealth();
  health.add(data);
  health.add(sub);
  const mq = new RedisRouter(data, sub, keyPrefix, log);
  const persistence = createRedisPersistence(data, keyPrefix);
  let ack: ReturnType<typeof ackAfterPublish> | null = null;

  return {
    persistence,
    mq,
    data,
    health,
    connections: [data, sub],
    routeBeforeAck(authorize) {
      ack = ackAfterPublish(authorize);
      return ack.authorizePublish;
    },
    attach(aedes) {
      ack?.attach(aedes, () => metrics.qos0Dropped.inc());
    },
  };
}
