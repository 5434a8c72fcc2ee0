import { ConfigError, intFrom, logLevelFrom, portFrom } from '../shared/config.ts';
import { redisTargetFrom, type RedisTarget } from '../shared/redis-target.ts';
import { DEFAULT_ADMIN_RATE_LIMITS } from './http/rate-limit.ts';

/**
 * The sidecar's configuration: the only reader of process.env. Validated once at start, every problem
 * reported together, then frozen.
 */
export interface SidecarConfig {
  port: number;
  host: string;
  redisUrl: string | null;
  /** REDIS_URL parsed: one Redis, Sentinel or Cluster (shared/redis-target.ts). */
  redis: RedisTarget | null;
  /** Replicas that must acknowledge each write before it is answered (REDIS_MIN_REPLICAS; default 0 on one
   *  Redis, 1 with Sentinel or Cluster). */
  redisMinReplicas: number;
  /** How long a write waits for those acknowledgements (REDIS_WAIT_TIMEOUT_MS, default 1000). */
  redisWaitTimeoutMs: number;
  /** Key prefix in Redis, so several deployments (or tests) can share one server. */
  redisPrefix: string;
  adminToken: string | null;
  brokerToken: string | null;
  logLevel: string;
  /** Trusted external issuer for user JWTs at MQTT CONNECT (optional). */
  trustedIssuer: { issuer: string; jwksUrl: string; audience: string | null } | null;
  /** Issuer name put in the JWTs this sidecar signs. */
  tokenIssuer: string;
  /** Admin-API work units per second per API key and per tenant (0 = unlimited); the root token is not limited. */
  rateLimits: { perKey: number; perTenant: number };
}


export function loadSidecarConfig(env: NodeJS.ProcessEnv = process.env): Readonly<SidecarConfig> {
  const problems: string[] = [];
  const port = portFrom(env.SIDECAR_PORT, 8080, 'SIDECAR_PORT', problems);
  const redisUrl = env.REDIS_URL?.trim() || null;
  const redis = redisTargetFrom(redisUrl ?? undefined, problems);
  const redisMinReplicas = intFrom(env.REDIS_MIN_REPLICAS, redis && redis.mode !== 'single' ? 1 : 0, 'REDIS_MIN_REPLICAS', 0, 16, problems);
  const redisWaitTimeoutMs = intFrom(env.REDIS_WAIT_TIMEOUT_MS, 1_000, 'REDIS_WAIT_TIMEOUT_MS', 10, 60_000, problems);
  const adminToken = env.AUTHZ_ADMIN_TOKEN?.trim() || null;
  if (adminToken && adminToken.length < 16) problems.push('AUTHZ_ADMIN_TOKEN must be at least 16 characters (or unset it to get a generated one)');
  const brokerToken = env.BROKER_TOKEN?.trim() || null;
  if (brokerToken && brokerToken.length < 16) problems.push('BROKER_TOKEN must be at least 16 characters');
  const logLevel = logLevelFrom(env.LOG_LEVEL, problems);
  const perKey = intFrom(env.ADMIN_RATE_LIMIT_PER_KEY, DEFAULT_ADMIN_RATE_LIMITS.perKey, 'ADMIN_RATE_LIMIT_PER_KEY', 0, 10_000_000, problems);
  const perTenant = intFrom(env.ADMIN_RATE_LIMIT_PER_TENANT, DEFAULT_ADMIN_RATE_LIMITS.perTenant, 'ADMIN_RATE_LIMIT_PER_TENANT', 0, 10_000_000, problems);
  let trustedIssuer: SidecarConfig['trustedIssuer'] = null;
  if (env.TRUSTED_JWT_ISSUER || env.TRUSTED_JWKS_URL) {
    if (!env.TRUSTED_JWT_ISSUER || !env.TRUSTED_JWKS_URL) problems.push('TRUSTED_JWT_ISSUER and TRUSTED_JWKS_URL must be set together');
    else trustedIssuer = { issuer: env.TRUSTED_JWT_ISSUER, jwksUrl: env.TRUSTED_JWKS_URL, audience: env.TRUSTED_JWT_AUDIENCE || null };
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({
    port,
    host: env.SIDECAR_HOST?.trim() || '0.0.0.0',
    redisUrl,
    redis,
    redisMinReplicas,
    redisWaitTimeoutMs,
    redisPrefix: env.REDIS_PREFIX?.trim() || 'sg:',
    adminToken,
    brokerToken,
    logLevel,
    trustedIssuer,
    tokenIssuer: env.TOKEN_ISSUER?.trim() || 'scopegate',
    rateLimits: { perKey, perTenant },
  });
}
