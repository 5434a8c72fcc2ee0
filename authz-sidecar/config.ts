import { ConfigError, logLevelFrom, portFrom } from '../shared/config.ts';

/**
 * The sidecar's configuration: the only reader of process.env. Validated once at start, every problem
 * reported together, then frozen.
 */
export interface SidecarConfig {
  port: number;
  host: string;
  redisUrl: string | null;
  /** Key prefix in Redis, so several deployments (or tests) can share one server. */
  redisPrefix: string;
  adminToken: string | null;
  brokerToken: string | null;
  logLevel: string;
  /** Trusted external issuer for user JWTs at MQTT CONNECT (optional). */
  trustedIssuer: { issuer: string; jwksUrl: string; audience: string | null } | null;
  /** Issuer name put in the JWTs this sidecar signs. */
  tokenIssuer: string;
}


export function loadSidecarConfig(env: NodeJS.ProcessEnv = process.env): Readonly<SidecarConfig> {
  const problems: string[] = [];
  const port = portFrom(env.SIDECAR_PORT, 8080, 'SIDECAR_PORT', problems);
  const redisUrl = env.REDIS_URL?.trim() || null;
  if (redisUrl && !/^rediss?:\/\//.test(redisUrl)) problems.push(`REDIS_URL must start with redis:// or rediss:// (got '${redisUrl.slice(0, 40)}')`);
  const adminToken = env.AUTHZ_ADMIN_TOKEN?.trim() || null;
  if (adminToken && adminToken.length < 16) problems.push('AUTHZ_ADMIN_TOKEN must be at least 16 characters (or unset it to get a generated one)');
  const brokerToken = env.BROKER_TOKEN?.trim() || null;
  if (brokerToken && brokerToken.length < 16) problems.push('BROKER_TOKEN must be at least 16 characters');
  const logLevel = logLevelFrom(env.LOG_LEVEL, problems);
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
    redisPrefix: env.REDIS_PREFIX?.trim() || 'sg:',
    adminToken,
    brokerToken,
    logLevel,
    trustedIssuer,
    tokenIssuer: env.TOKEN_ISSUER?.trim() || 'scopegate',
  });
}
