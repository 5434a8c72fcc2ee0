import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { randomUUID } from 'node:crypto';
import { Aedes, type AedesOptions, type Client } from 'aedes';
import type { BrokerChangeEvent, DisconnectEvent } from '../shared/broker-wire.ts';
import { toClient, type TopicView } from '../shared/topic.ts';
import { LedgerReporter } from './ledger-reporter.ts';
import { stateOf } from './session-registry.ts';
import { REFUSED_FILTER } from './session-state.ts';
import pino, { type Logger } from 'pino';
import { logDestination } from '../shared/log-destination.ts';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { clientAddressOf } from './client-address.ts';
import { sendError } from '../shared/http-error.ts';
import { redisTargetFrom } from '../shared/redis-target.ts';
import { boundEmitterRecursion, checkAedesVersions, destroyPersistence, forgetClientsClosedBeforeRegistration, handleWithAddress, keepStoredTopicsInternal, limitOfflineQueues, neverWaitForDrain, subscriptionsOf, redisOutgoingKey, tolerateUnknownPubrec } from './aedes-internals.ts';
import { LimitCounters } from './limits/limit-counters.ts';
import { OfflineQueues } from './limits/offline-queues.ts';
import { RetainedQuota } from './limits/retained-quota.ts';
import { RedisRetainedQuota } from './limits/redis-retained-quota.ts';
import { LimitRuntime } from './limits/session-limits.ts';
import type { BrokerConfig } from './config.ts';
import type { BrokerContext } from './context.ts';
import { authorizeForward } from './hooks/authorize-forward.ts';
import { authorizePublish } from './hooks/authorize-publish.ts';
import { authorizeSubscribe } from './hooks/authorize-subscribe.ts';
import { authenticate, preConnect } from './hooks/connect.ts';
import { LiveUpdates } from './live-updates.ts';
import { createRedisMode } from './redis-mode.ts';
import type { BrokerClock } from './clock.ts';
import { createBrokerMetrics } from './metrics.ts';
import { SessionControl } from './session-control.ts';
import { SessionRegistry } from './session-registry.ts';
import { SlowConsumers } from './slow-consumers.ts';
import { SharedGroups } from './shared-subscriptions.ts';
import { localClaims, redisClaims } from './claims.ts';
import { SidecarClient } from './sidecar-client.ts';
import { TopicSpacePurge } from './topic-space-purge.ts';
import { listenOn } from '../shared/listen.ts';

export interface RunningBroker {
  tcpPort: number;
  wsPort: number;
  /** Port of the HTTP endpoint with /metrics, /healthz and /readyz (null when disabled). */
  metricsPort: number | null;
  aedes: Aedes;
  context: BrokerContext;
  live: LiveUpdates;
  ledger: LedgerReporter;
  close(): Promise<void>;
}

export interface BrokerOptions {
  logger?: Logger;
  /** Port for /metrics, /healthz, /readyz; null disables it. Default from config. */
  metricsPort?: number | null;
  /** Silence after which the change feed is reopened (tests shorten it). */
  feedSilenceMs?: number;
  /** Aedes broker id, also this broker's id in the session ledger (defaults to a random one). */
  id?: string;
  /** Period of the session ledger lease renewal (tests shorten it). */
  ledgerHeartbeatMs?: number;
  /** The clock token expiry follows (default: the system clock; tests pass one they move). */
  clock?: BrokerClock;
}

/**
 * Starts one ScopeGate broker: Aedes 1.x with the ScopeGate hooks, on TCP and WebSocket, with Redis
 * persistence and emitter when `redisUrl` is set (several brokers then share sessions and traffic), and the
 * change feed from the sidecar keeping live sessions in step with policy.
 */
export async function startBroker(config: Readonly<BrokerConfig>, options: BrokerOptions = {}): Promise<RunningBroker> {
  // Before anything starts: the Aedes internals ScopeGate relies on were checked against these versions only.
  checkAedesVersions(config.redisUrl !== null);
  const logger = options.logger ?? pino({ level: config.logLevel, base: { process: 'broker' } }, logDestination());
  const metrics = createBrokerMetrics();
  const registry = new SessionRegistry();
  const limitCounters = new LimitCounters();
  const redisTarget = config.redis ?? redisTargetFrom(config.redisUrl ?? undefined, []);
  const redis = redisTarget ? createRedisMode(redisTarget, config.redisBrokerPrefix, logger, metrics) : null;
  // The retained quota is counted where the retained messages are: in Redis (shared by every broker), or here.
  const limits = new LimitRuntime(config.limitDefaults, redis ? new RedisRetainedQuota(redis.data) : new RetainedQuota(), limitCounters);
  const queues = new OfflineQueues(config.limitDefaults.maxQueuedMessages, limitCounters);
  metrics.trackLimitEvents(limitCounters);
  const sessions = new SessionControl(registry, config.decisionCacheSize, metrics, logger, limits, queues, options.clock);
  const sidecar = new SidecarClient(config.sidecarUrl, config.brokerToken, config.sidecarTimeoutMs);
  const brokerId = options.id ?? `broker-${randomUUID()}`;
  const ledger = new LedgerReporter({ sidecar, brokerId, logger, ...(options.ledgerHeartbeatMs ? { heartbeatMs: options.ledgerHeartbeatMs } : {}) });
  // An admin's disconnect reaches every broker through the change feed; the session's own broker closes it.
  const onDisconnect = (d: DisconnectEvent) => {
    if (d.brokerId !== brokerId) return;
    const client = ledger.clientOf(d.sessionId);
    if (client) sessions.close(client, 'disconnected_by_admin');
  };
  let purge: TopicSpacePurge | null = null; // needs the Aedes instance; the feed starts after it exists
  const onRemoved = async (event: BrokerChangeEvent) => purge?.apply(event);
  const live = new LiveUpdates({ sidecar, registry, sessions, metrics, logger, graceMs: config.sidecarGraceMs, silenceMs: options.feedSilenceMs, onDisconnect, onRemoved });
  const context: BrokerContext = { config, sidecar, registry, sessions, live, metrics, logger, shared: null, purge: null, claims: redis ? redisClaims(redis.data) : localClaims, limits, ledger, redisHealth: redis?.health ?? null };

  const aedesOptions: AedesOptions = {
    preConnect: preConnect(context),
    authenticate: authenticate(context),
    // Wills of dead brokers' sessions are published anew once re-decided (see swept-wills.ts); `aedes` exists
    // by then (the will sweep runs only after the broker started).
    authorizePublish: (redis ? redis.routeBeforeAck : (h: AedesOptions['authorizePublish']) => h)(
      authorizePublish(context, (message) => new Promise((resolve, reject) => aedes.publish(message as never, (err?: Error) => (err ? reject(err) : resolve())))),
    ),
    authorizeSubscribe: authorizeSubscribe(context),
    authorizeForward: authorizeForward(context, new SlowConsumers(config.maxOutgoingBytes, metrics, logger)),
    // The internal topic adds the mount (2 levels) and the namespace to what a client writes (≤ 16 levels).
    maxTopicLevels: 100,
    heartbeatInterval: config.heartbeatMs,
    id: brokerId,
  };
  if (redis && redisTarget) {
    const conn = redis.data;
    queues.lengths = { lengthOf: (clientId) => conn.llen(redisOutgoingKey(clientId)) };
    aedesOptions.persistence = redis.persistence;
    aedesOptions.mq = redis.mq as unknown as AedesOptions['mq'];
    logger.info({ mode: redisTarget.mode, prefix: config.redisBrokerPrefix }, 'persistence: Redis (aedes-persistence-redis + coarse-channel router)');
  } else {
    logger.warn('persistence: in-memory (REDIS_URL is unset) — sessions, queued and retained messages are lost when this process stops');
  }
  const aedes = await Aedes.createBroker(aedesOptions);
  redis?.attach(aedes);
  tolerateUnknownPubrec(aedes);
  boundEmitterRecursion(aedes);
  keepStoredTopicsInternal(aedes);
  forgetClientsClosedBeforeRegistration(aedes);
  purge = new TopicSpacePurge(aedes, redis?.data ?? null, limits.retained, metrics, logger);
  context.purge = purge;
  // Shared subscriptions: with several brokers on one Redis, a Redis claim lets one broker deliver each message
  // (one round trip per message and group, only for shared subscriptions).
  const shared = new SharedGroups(aedes, (messageKey) => context.claims.take(`share:${messageKey}`), logger);
  context.shared = shared;
  sessions.shared = shared;
  aedes.on('client', (client) => shared.connected(client));
  aedes.on('clientDisconnect', (client) => {
    shared.disconnected(client);
    sessions.ended(client);
    ledger.ended(client);
  });
  limitOfflineQueues(aedes, (clientId) => queues.admit(clientId));
  // Aedes emits 'error' for failures outside any client (the will sweep, the offline-queue lookup); an
  // EventEmitter 'error' with no listener would end the process, and with it every tenant's sessions.
  // While Redis is down such failures are part of the outage, already logged once by the connection.
  (aedes as unknown as NodeJS.EventEmitter).on('error', (err: Error) => {
    if (redis && !redis.health.up) logger.debug({ err: err.message }, 'broker error during the Redis outage (handled)');
    else logger.error({ err: err.message }, 'broker error (handled; the broker keeps running)');
  });
  // The ledger shows each session's subscriptions as the client wrote them.
  const reportSubscriptions = (client: Client | null) => {
    const state = stateOf(client);
    if (client && state) ledger.subscriptions(client, clientViewSubscriptions(client, state.view));
  };
  aedes.on('subscribe', (_subs, client) => reportSubscriptions(client));
  aedes.on('unsubscribe', (_subs, client) => reportSubscriptions(client));
  aedes.on('clientError', (client, err) => logger.debug({ clientId: client.id, err: err.message }, 'client error'));
  aedes.on('connectionError', (client, err) => logger.debug({ clientId: client?.id, err: err.message }, 'connection error'));

  live.start();

  // No Nagle: MQTT messages are small and latency matters more than packing them into fewer segments.
  // Writes never wait for a slow reader (each connection's buffer is bounded instead: slow-consumers.ts).
  const tcp = createNetServer({ noDelay: true }, (socket) => {
    neverWaitForDrain(socket);
    aedes.handle(socket);
  });
  const tcpPort = await listenOn(tcp, config.mqttPort, config.host, 'MQTT_PORT');

  const http = createHttpServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' }).end('MQTT over WebSocket: connect with a WebSocket client (subprotocol mqtt)\n');
  });
  const wss = new WebSocketServer({ server: http });
  // The ws server re-emits its HTTP server's errors; a bind failure is reported by listenOn below, so the
  // re-emitted copy must not become an unhandled 'error' event that kills the process.
  wss.on('error', (err) => logger.debug({ err: err.message }, 'websocket server error'));
  wss.on('connection', (ws, req) => {
    const stream = createWebSocketStream(ws);
    stream.on('error', () => stream.destroy());
    neverWaitForDrain(stream);
    handleWithAddress(aedes, stream, req, clientAddressOf(req, config.trustedProxies));
  });
  const wsPort = await listenOn(http, config.wsPort, config.host, 'MQTT_WS_PORT');

  const metricsPortWanted = options.metricsPort === undefined ? config.metricsPort : options.metricsPort;
  let metricsServer: HttpServer | null = null;
  let metricsPort: number | null = null;
  if (metricsPortWanted !== null) {
    metricsServer = createHttpServer((req, res) => {
      if (req.url === '/metrics') {
        metrics.connectedClients.reset();
        if (redis) metrics.redisUp.set(redis.health.up ? 1 : 0);
        for (const [tenant, n] of registry.countsByTenant()) metrics.connectedClients.labels(tenant).set(n);
        metrics.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
          () => sendError(res, 'INTERNAL'),
        );
      } else if (req.url === '/healthz') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok' }));
      } else if (req.url === '/readyz') {
        const redisUp = redis ? redis.health.up : true;
        const up = live.isUp && redisUp;
        const status = up ? 'ready' : !redisUp ? 'redis unavailable' : 'change feed down';
        res.writeHead(up ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status, clients: registry.size }));
      } else {
        sendError(res, 'ROUTE_NOT_FOUND');
      }
    });
    metricsPort = await listenOn(metricsServer, metricsPortWanted, config.metricsHost, 'BROKER_METRICS_PORT');
  }
  logger.info({ tcpPort, wsPort, metricsPort, sidecar: config.sidecarUrl }, `broker listening: mqtt://${config.host}:${tcpPort}, ws://${config.host}:${wsPort}`);

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      tcp.close();
      wss.close();
      http.close();
      metricsServer?.close();
      await live.stop();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await ledger.stop();
      sidecar.close();
      await destroyPersistence(aedes);
      for (const c of redis?.connections ?? []) c.disconnect();
      http.closeAllConnections?.();
    })());

  return { tcpPort, wsPort, metricsPort, aedes, context, live, ledger, close };
}
/** A session's subscriptions (Aedes keeps them by internal filter) as the client wrote them. */
function clientViewSubscriptions(client: Client, view: TopicView): string[] {
  const out: string[] = [];
  for (const [internal] of subscriptionsOf(client)) {
    if (internal.startsWith(REFUSED_FILTER)) continue;
    const mine = toClient(view, internal);
    if (mine !== null) out.push(mine);
  }
  return out.sort();
}
