/**
 * The broker's configuration: the only reader of process.env in broker/. Validated once at start, every
 * problem reported together, then frozen.
 */
export interface BrokerConfig {
  mqttPort: number;
  wsPort: number;
  /** HTTP port for /metrics, /healthz and /readyz. */
  metricsPort: number;
  host: string;
  /** Base URL of the authz sidecar's broker API. */
  sidecarUrl: string;
  brokerToken: string;
  /** Set: aedes-persistence-redis + mqemitter-redis; unset: Aedes' in-memory persistence. */
  redisUrl: string | null;
  /** What a refused PUBLISH does: close the connection (default) or drop the message silently. */
  denyAction: 'disconnect' | 'drop';
  /** How long already-decided sessions keep working while the sidecar's change feed is down. */
  sidecarGraceMs: number;
  /** Timeout of one call to the sidecar; a CONNECT that times out gets CONNACK 3. */
  sidecarTimeoutMs: number;
  /** Bound of each session's publish-decision cache (entries). */
  decisionCacheSize: number;
  logLevel: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function loadBrokerConfig(env: NodeJS.ProcessEnv = process.env): Readonly<BrokerConfig> {
  const problems: string[] = [];
  const mqttPort = int(env.MQTT_PORT, 1883, 'MQTT_PORT', 0, 65535, problems);
  const wsPort = int(env.MQTT_WS_PORT, 8083, 'MQTT_WS_PORT', 0, 65535, problems);
  const metricsPort = int(env.BROKER_METRICS_PORT, 9464, 'BROKER_METRICS_PORT', 0, 65535, problems);
  const sidecarUrl = (env.SIDECAR_URL?.trim() || 'http://127.0.0.1:8080').replace(/\/+$/, '');
  if (!/^https?:\/\//.test(sidecarUrl)) problems.push(`SIDECAR_URL must be an http(s) URL (got '${sidecarUrl.slice(0, 40)}')`);
  const brokerToken = env.BROKER_TOKEN?.trim() ?? '';
  if (brokerToken.length < 16) problems.push('BROKER_TOKEN must be set (at least 16 characters) to the same value the sidecar has');
  const redisUrl = env.REDIS_URL?.trim() || null;
  if (redisUrl && !/^rediss?:\/\//.test(redisUrl)) problems.push(`REDIS_URL must start with redis:// or rediss://`);
  const denyAction = (env.MQTT_DENY_ACTION?.trim() || 'disconnect') as BrokerConfig['denyAction'];
  if (denyAction !== 'disconnect' && denyAction !== 'drop') problems.push(`MQTT_DENY_ACTION must be 'disconnect' or 'drop'`);
  const logLevel = env.LOG_LEVEL?.trim() || 'info';
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);
  const sidecarGraceMs = int(env.SIDECAR_GRACE_MS, 30_000, 'SIDECAR_GRACE_MS', 0, 86_400_000, problems);
  const sidecarTimeoutMs = int(env.SIDECAR_TIMEOUT_MS, 2_000, 'SIDECAR_TIMEOUT_MS', 50, 60_000, problems);
  const decisionCacheSize = int(env.DECISION_CACHE_SIZE, 1_024, 'DECISION_CACHE_SIZE', 1, 1_000_000, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({
    mqttPort,
    wsPort,
    metricsPort,
    host: env.MQTT_HOST?.trim() || '0.0.0.0',
    sidecarUrl,
    brokerToken,
    redisUrl,
    denyAction,
    sidecarGraceMs,
    sidecarTimeoutMs,
    decisionCacheSize,
    logLevel,
  });
}

function int(value: string | undefined, fallback: number, name: string, min: number, max: number, problems: string[]): number {
  if (value === undefined || value.trim() === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    problems.push(`${name} must be an integer ${min}–${max} (got '${value.slice(0, 20)}')`);
    return fallback;
  }
  return n;
}
