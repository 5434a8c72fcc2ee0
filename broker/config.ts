import { ConfigError, intFrom, logLevelFrom } from '../shared/config.ts';
import type { LimitDefaults } from './limits/session-limits.ts';
import { redisTargetFrom, type RedisTarget } from '../shared/redis-target.ts';
import { normalize } from './client-address.ts';

/**
 * The broker's configuration: the only reader of process.env in broker/. Validated once at start, every
 * problem reported together, then frozen.
 */
export interface BrokerConfig {
  mqttPort: number;
  wsPort: number;
  /** HTTP port for /metrics, /healthz and /readyz. */
  metricsPort: number;
  /**
   * Listen address of the metrics port. Loopback by default: /metrics names every tenant with its client
   * count and has no authentication, so it is only reachable from the broker's own host (or a scraper given
   * access on purpose, by setting this).
   */
  metricsHost: string;
  host: string;
  /** Base URL of the authz sidecar's broker API. */
  sidecarUrl: string;
  brokerToken: string;
  /** Set: aedes-persistence-redis + the Redis router (broker/redis-router.ts); unset: Aedes' in-memory persistence. */
  redisUrl: string | null;
  /** REDIS_URL parsed: one Redis, Sentinel or Cluster (shared/redis-target.ts). */
  redis: RedisTarget | null;
  /** Prefix of every broker key and pub/sub channel in Redis (REDIS_BROKER_PREFIX, default `sgb:`). */
  redisBrokerPrefix: string;
  /** What a refused PUBLISH does: close the connection (default) or drop the message silently. */
  denyAction: 'disconnect' | 'drop';
  /** How long already-decided sessions keep working while the sidecar's change feed is down. */
  sidecarGraceMs: number;
  /** Timeout of one call to the sidecar; a CONNECT that times out gets CONNACK 3. */
  sidecarTimeoutMs: number;
  /** Bound of each session's publish-decision cache (entries). */
  decisionCacheSize: number;
  /**
   * How often this broker announces itself to the others on the same Redis (Aedes heartbeat). A broker silent
   * for three intervals is dead: the others publish (after re-deciding) the wills of its sessions, sweeping
   * every four intervals.
   */
  heartbeatMs: number;
  /**
   * Bound of one connection's outgoing buffer (bytes written to it and not yet taken by the client). Full: its
   * QoS 0 deliveries are dropped, and a QoS 1/2 delivery disconnects it (a persistent session keeps the
   * message queued). A client that stops reading never delays any other.
   */
  maxOutgoingBytes: number;
  /** Peers whose `x-forwarded-for` is believed for a WebSocket client's address (MQTT_TRUSTED_PROXIES). */
  trustedProxies: string[];
  logLevel: string;
  /** Safe defaults with no configuration (README: Limits); the scope tree's `limits` override the per-session ones. */
  limitDefaults: Readonly<LimitDefaults>;
}


export function loadBrokerConfig(env: NodeJS.ProcessEnv = process.env): Readonly<BrokerConfig> {
  const problems: string[] = [];
  const mqttPort = intFrom(env.MQTT_PORT, 1883, 'MQTT_PORT', 0, 65535, problems);
  const wsPort = intFrom(env.MQTT_WS_PORT, 8083, 'MQTT_WS_PORT', 0, 65535, problems);
  const metricsPort = intFrom(env.BROKER_METRICS_PORT, 9464, 'BROKER_METRICS_PORT', 0, 65535, problems);
  const sidecarUrl = (env.SIDECAR_URL?.trim() || 'http://127.0.0.1:8080').replace(/\/+$/, '');
  if (!/^https?:\/\//.test(sidecarUrl)) problems.push(`SIDECAR_URL must be an http(s) URL (got '${sidecarUrl.slice(0, 40)}')`);
  const brokerToken = env.BROKER_TOKEN?.trim() ?? '';
  if (brokerToken.length < 16) problems.push('BROKER_TOKEN must be set (at least 16 characters) to the same value the sidecar has');
  const redisUrl = env.REDIS_URL?.trim() || null;
  const redis = redisTargetFrom(redisUrl ?? undefined, problems);
  const redisBrokerPrefix = env.REDIS_BROKER_PREFIX?.trim() || 'sgb:';
  if (redis?.mode === 'cluster' && /\{[^}]*\}/.test(redisBrokerPrefix)) problems.push('REDIS_BROKER_PREFIX must not contain a {hash tag} on Redis Cluster (the broker\'s keys are meant to spread over the nodes)');
  const denyAction = (env.MQTT_DENY_ACTION?.trim() || 'disconnect') as BrokerConfig['denyAction'];
  if (denyAction !== 'disconnect' && denyAction !== 'drop') problems.push(`MQTT_DENY_ACTION must be 'disconnect' or 'drop'`);
  const logLevel = logLevelFrom(env.LOG_LEVEL, problems);
  const sidecarGraceMs = intFrom(env.SIDECAR_GRACE_MS, 30_000, 'SIDECAR_GRACE_MS', 0, 86_400_000, problems);
  const sidecarTimeoutMs = intFrom(env.SIDECAR_TIMEOUT_MS, 2_000, 'SIDECAR_TIMEOUT_MS', 50, 60_000, problems);
  const decisionCacheSize = intFrom(env.DECISION_CACHE_SIZE, 1_024, 'DECISION_CACHE_SIZE', 1, 1_000_000, problems);
  const limitDefaults = Object.freeze({
    maxPacketBytes: intFrom(env.MQTT_MAX_PACKET_BYTES, 1_048_576, 'MQTT_MAX_PACKET_BYTES', 1_024, 268_435_455, problems),
    maxSubscriptionsPerSession: intFrom(env.MQTT_MAX_SUBSCRIPTIONS_PER_SESSION, 1_000, 'MQTT_MAX_SUBSCRIPTIONS_PER_SESSION', 1, 1_000_000, problems),
    maxQueuedMessages: intFrom(env.MQTT_MAX_QUEUED_MESSAGES, 1_000, 'MQTT_MAX_QUEUED_MESSAGES', 1, 100_000_000, problems),
    retainedMessagesPerTenant: intFrom(env.MQTT_RETAINED_MESSAGES_PER_TENANT, 10_000, 'MQTT_RETAINED_MESSAGES_PER_TENANT', 0, 100_000_000, problems),
    retainedBytesPerTenant: intFrom(env.MQTT_RETAINED_BYTES_PER_TENANT, 67_108_864, 'MQTT_RETAINED_BYTES_PER_TENANT', 0, 2 ** 40, problems),
  });
  const maxOutgoingBytes = intFrom(env.MQTT_MAX_OUTGOING_BYTES, 1_048_576, 'MQTT_MAX_OUTGOING_BYTES', 65_536, 1_073_741_824, problems);
  const heartbeatMs = intFrom(env.BROKER_HEARTBEAT_MS, 60_000, 'BROKER_HEARTBEAT_MS', 100, 3_600_000, problems);
  const trustedProxies = (env.MQTT_TRUSTED_PROXIES ?? '').split(',').map((a) => a.trim()).filter((a) => a !== '');
  const badProxies = trustedProxies.filter((a) => normalize(a) === undefined);
  if (badProxies.length > 0) problems.push(`MQTT_TRUSTED_PROXIES must be comma-separated IP addresses (got '${badProxies[0]!.slice(0, 40)}')`);
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({
    limitDefaults,
    trustedProxies: trustedProxies.map((a) => normalize(a)!),
    mqttPort,
    wsPort,
    metricsPort,
    metricsHost: env.BROKER_METRICS_HOST?.trim() || '127.0.0.1',
    host: env.MQTT_HOST?.trim() || '0.0.0.0',
    sidecarUrl,
    brokerToken,
    redisUrl,
    redis,
    redisBrokerPrefix,
    denyAction,
    sidecarGraceMs,
    sidecarTimeoutMs,
    decisionCacheSize,
    heartbeatMs,
    maxOutgoingBytes,
    logLevel,
  });
}
