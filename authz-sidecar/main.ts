import pino from 'pino';
import { ConfigError } from '../shared/config.ts';
import { isScopeGateError } from '../shared/errors.ts';
import { logDestination } from '../shared/log-destination.ts';
import { runIfEntry } from '../shared/process-entry.ts';
import { loadSidecarConfig } from './config.ts';
import { createSidecar } from './sidecar.ts';
import { MemoryPolicyStore } from './store/memory-policy-store.ts';
import type { PolicyStore } from './store/policy-store.ts';
import { RedisPolicyStore } from './store/redis-policy-store.ts';
import { connectRedis } from '../shared/redis-connection.ts';
import { redactRedisUrl } from '../shared/redis-target.ts';

/** Starts one sidecar from the environment: config → store → sidecar → listen; SIGTERM shuts down gracefully. */
export async function main(env: NodeJS.ProcessEnv = process.env): Promise<{ port: number; adminToken: string; brokerToken: string; close(): Promise<void> }> {
  const config = loadSidecarConfig(env);
  const logger = pino({ level: config.logLevel, base: { process: 'authz-sidecar' }, redact: ['req.headers.authorization', 'password', 'token', 'secret'] }, logDestination());

  let store: PolicyStore;
  /** The last connection error of the store's Redis, to name the cause when the start fails on it. */
  let redisCause: string | null = null;
  if (config.redis && config.redisUrl) {
    const redis = connectRedis(config.redis, { name: 'store', logger: logger.child({ component: 'redis' }) });
    redis.on('error', (e: NodeJS.ErrnoException) => (redisCause = e.code ?? e.message));
    store = new RedisPolicyStore({ redis, prefix: config.redisPrefix, minReplicas: config.redisMinReplicas, waitTimeoutMs: config.redisWaitTimeoutMs });
    logger.info({ redis: redactRedisUrl(config.redisUrl), mode: config.redis.mode, prefix: config.redisPrefix, minReplicas: config.redisMinReplicas }, 'store: Redis');
  } else {
    store = new MemoryPolicyStore();
    logger.warn('store: in-memory (REDIS_URL is unset) — nothing is durable; every write is lost when this process stops');
  }

  const sidecar = await createSidecar({
    store,
    adminToken: config.adminToken,
    brokerToken: config.brokerToken,
    logger,
    tokenIssuer: config.tokenIssuer,
    trustedIssuer: config.trustedIssuer,
    rateLimits: { ...config.rateLimits, burstSeconds: 2 },
  }).catch((e: unknown) => {
    // Redis unreachable at start: one line that names the URL (never its password) and the cause.
    if (config.redisUrl && isScopeGateError(e) && e.code === 'STORE_UNAVAILABLE') {
      throw new ConfigError([`cannot reach Redis at ${redactRedisUrl(config.redisUrl)}${redisCause ? ` (${redisCause})` : ''}: is redis-server running there? (REDIS_URL)`]);
    }
    throw e;
  });
  const port = await sidecar.listen(config.port, config.host);
  logger.info({ port }, `authz-sidecar listening on http://${config.host}:${port}`);

  if (!config.adminToken) {
    // Printed once, to stdout, so a first-time user can paste it; never logged.
    process.stdout.write(
      [
        '',
        'No AUTHZ_ADMIN_TOKEN was set, so this one was generated for this run:',
        `  AUTHZ_ADMIN_TOKEN=${sidecar.adminToken}`,
        'Try:',
        `  curl -s -X POST http://127.0.0.1:${port}/v1/tenants -H 'Authorization: Bearer ${sidecar.adminToken}' -H 'content-type: application/json' -d '{"name":"Acme Corp","slug":"acme-corp"}'`,
        '',
      ].join('\n') + '\n',
    );
  }

  let closing: Promise<void> | undefined;
  const close = () => (closing ??= sidecar.close());
  return { port, adminToken: sidecar.adminToken, brokerToken: sidecar.brokerToken, close };
}

runIfEntry(import.meta.url, 'authz-sidecar', main);
