import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { RedisTarget } from './redis-target.ts';

/**
 * Every Redis connection of both processes is made here, so they all behave alike during an outage:
 *
 * - An 'error' listener is always attached (an unhandled 'error' event would end the process), and each
 *   outage is logged once when it starts and once when the connection is ready again, never per command.
 * - Reconnects run forever, quickly (100 ms, backing off to 500 ms), so service resumes well within 2 s
 *   after Redis is back.
 * - A command issued while the connection is down waits in ioredis' offline queue; the queue is capped
 *   (OFFLINE_QUEUE_CAP commands per connection): beyond it a command is rejected at once. A queued command
 *   is rejected after one failed reconnect attempt (maxRetriesPerRequest 1), and a command in flight when
 *   the connection drops is rejected rather than re-sent. Every caller therefore sees a failure within
 *   about a second and memory stays bounded however long Redis is away.
 * - A command nobody waits for cannot end the process. Libraries issue some commands without awaiting them
 *   (aedes-persistence-redis' `lrem` in putWill/delWill and its stale-key cleanup); when the outage rejects
 *   such a command, Node would treat the rejection as unhandled and exit. Every command's promise is marked
 *   handled when it is sent; a caller that awaits it still gets the error.
 */
export const OFFLINE_QUEUE_CAP = 1_000;

export interface OutageLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export type RedisConnection = Redis | Cluster;

export interface ConnectOptions {
  /** Names the connection in logs (`persistence`, `router-sub`, `store`…). */
  name: string;
  logger: OutageLogger;
  /** ioredis keyPrefix: prepended to every key (not to pub/sub channels). */
  keyPrefix?: string;
  /** Overrides OFFLINE_QUEUE_CAP (0: fail at once while disconnected). */
  offlineQueueCap?: number;
  /** Extra ioredis options for the data connection(s). */
  options?: RedisOptions;
}

const retryStrategy = (times: number) => Math.min(times * 100, 500);

/** Opens a connection to the target (one Redis, a Sentinel-managed master or a Cluster). */
export function connectRedis(target: RedisTarget, opts: ConnectOptions): RedisConnection {
  const common: RedisOptions = {
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    autoResendUnfulfilledCommands: false,
    ...(opts.keyPrefix ? { keyPrefix: opts.keyPrefix } : {}),
    ...opts.options,
  };
  let conn: RedisConnection;
  if (target.mode === 'single') {
    conn = new Redis(target.url, { ...common, retryStrategy });
  } else if (target.mode === 'sentinel') {
    conn = new Redis({
      ...common,
      retryStrategy,
      sentinels: target.sentinels,
      name: target.masterName,
      db: target.db,
      ...(target.password ? { password: target.password } : {}),
      sentinelRetryStrategy: retryStrategy,
      // No failoverDetector: with it, ioredis 5.9 dropped the connection to the new master every few seconds
      // after a failover (measured); the plain reconnect asks the sentinels for the master anyway.
      failoverDetector: false,
      // Sentinels found through the ones listed are added to the list (a replaced sentinel is still found).
      updateSentinels: true,
    });
  } else {
    const { keyPrefix, ...redisOptions } = common;
    const clusterOptions: ClusterOptions = {
      redisOptions: { ...redisOptions, ...(target.password ? { password: target.password } : {}) },
      clusterRetryStrategy: retryStrategy,
      ...(keyPrefix ? { keyPrefix } : {}),
      // After a failover the slots move: refresh the map often enough to find the promoted replica quickly.
      slotsRefreshInterval: 2_000,
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 200,
    };
    conn = new Cluster(target.nodes, clusterOptions);
  }
  watchOutages(conn, opts.name, opts.logger);
  guardCommands(conn, opts.offlineQueueCap ?? OFFLINE_QUEUE_CAP);
  return conn;
}

/** A second connection to the same target with the same behaviour (for subscribers and blocking reads). */
export function duplicateConnection(conn: RedisConnection, name: string, logger: OutageLogger): RedisConnection {
  const copy = conn.duplicate() as RedisConnection;
  watchOutages(copy, name, logger);
  guardCommands(copy, OFFLINE_QUEUE_CAP);
  return copy;
}

const DOWN = Symbol('scopegate.redisDownSince');
type Watched = RedisConnection & { [DOWN]?: number | null };

/** True while the connection can run commands. */
export function isReady(conn: RedisConnection): boolean {
  return conn.status === 'ready' && !(conn as Watched)[DOWN];
}

function watchOutages(conn: RedisConnection, name: string, logger: OutageLogger): void {
  const w = conn as Watched;
  w[DOWN] = null;
  const wentDown = (err: Error | null) => {
    if (w[DOWN] || conn.status === 'end') return;
    w[DOWN] = Date.now();
    logger.warn({ redis: name, err: err?.message ?? 'connection closed' }, 'redis unreachable (logged once per outage)');
  };
  conn.on('error', (err: Error) => wentDown(err));
  conn.on('close', () => {
    if (conn.status !== 'end') wentDown(null);
  });
  if (conn instanceof Cluster) conn.on('node error', (err: Error) => logger.warn({ redis: name, err: err?.message }, 'redis cluster node error'));
  conn.on('ready', () => {
    const since = w[DOWN];
    w[DOWN] = null;
    if (since) logger.info({ redis: name, downMs: Date.now() - since }, 'redis reachable again');
  });
}

type Sender = { sendCommand(command: { reject(err: Error): void; promise: Promise<unknown> }, ...rest: unknown[]): unknown; offlineQueue?: { length: number } };

const ignore = () => undefined;

/**
 * Every command passes here: it is rejected at once when the connection is not ready and its offline queue
 * holds `cap` commands, and its promise is marked handled (see the module comment: a rejected command that
 * no caller awaits must not end the process).
 */
function guardCommands(conn: RedisConnection, cap: number): void {
  const sender = conn as unknown as Sender;
  const send = sender.sendCommand.bind(conn);
  sender.sendCommand = (command, ...rest) => {
    command.promise.catch(ignore);
    if (conn.status !== 'ready' && (sender.offlineQueue?.length ?? 0) >= cap) {
      command.reject(new Error(`Redis unavailable: offline queue full (${cap} commands waiting)`));
      return command.promise;
    }
    return send(command, ...rest);
  };
}

/**
 * Whether a process's Redis connections are all usable: /readyz and the CONNECT gate read it. A
 * connection counts as down from its first error until it is ready again.
 */
export class RedisHealth {
  private readonly conns: RedisConnection[] = [];

  add<T extends RedisConnection>(conn: T): T {
    this.conns.push(conn);
    return conn;
  }

  get up(): boolean {
    for (const c of this.conns) if (!isReady(c)) return false;
    return true;
  }

  get connections(): readonly RedisConnection[] {
    return this.conns;
  }
}
