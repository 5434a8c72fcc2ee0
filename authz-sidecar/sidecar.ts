import { randomBytes } from 'node:crypto';
import { STATUS_CODES, createServer, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { listenOn } from '../shared/listen.ts';
import pino, { type Logger } from 'pino';
import { ScopeGateError, isScopeGateError } from '../shared/errors.ts';
import { createApp } from './app.ts';
import { createDecisionAnswers } from './http/decision-answers.ts';
import { fastRoutes } from './http/fast-routes.ts';
import { ledgerReportAnswer } from './routes/broker.ts';
import { createSidecarMetrics } from './metrics.ts';
import { PolicyReplica } from './model/replica.ts';
import { RouteRegistry } from './routes/registry.ts';
import { ensureBuiltins } from './service/builtins.ts';
import { Writer } from './service/writer.ts';
import type { PolicyStore } from './store/policy-store.ts';
import { LoginThrottle } from './credentials/login-throttle.ts';
import { AdminRateLimiter, DEFAULT_ADMIN_RATE_LIMITS, type AdminRateLimits } from './http/rate-limit.ts';
import { trustedIssuerVerifier, type TrustedIssuerConfig } from './credentials/trusted-issuer.ts';
import { ensureSigningKey, newSigningKey } from './credentials/signing-keys.ts';
import type { SessionLedger } from './ledger/session-ledger.ts';
import { MemorySessionLedger } from './ledger/memory-session-ledger.ts';
import { RedisSessionLedger } from './ledger/redis-session-ledger.ts';
import { maxSessionLimits, type SessionLimits } from './ledger/session-entry.ts';
import { RedisPolicyStore } from './store/redis-policy-store.ts';

export interface SidecarOptions {
  store: PolicyStore;
  adminToken?: string | null;
  brokerToken?: string | null;
  logger?: Logger;
  clock?: () => Date;
  tokenIssuer?: string;
  /** Identity provider whose JWTs users may log in with over MQTT (username = actorId, `sub` = externalSubject). */
  trustedIssuer?: TrustedIssuerConfig | null;
  throttle?: LoginThrottle;
  /** Change-feed heartbeat period for the broker. */
  heartbeatMs?: number;
  /** Live session ledger; default: shared through the store's Redis for a RedisPolicyStore, else in memory. */
  ledger?: SessionLedger;
  /** Session-count limits checked when a CONNECT reserves its slot (issue 13's maxSessions); none by default. */
  sessionLimits?: SessionLimits;
  /** Admin-API rate limits per API key and per tenant (defaults: DEFAULT_ADMIN_RATE_LIMITS). */
  rateLimits?: AdminRateLimits;
}

/**
 * One sidecar: the replica of the store, the writer, the Express app. Built from injected parts so tests
 * run several of them (on one Redis) in one process; main.ts adds config, Redis and signals.
 */
export async function createSidecar(options: SidecarOptions) {
  const logger = options.logger ?? pino({ level: 'silent' });
  const clock = options.clock ?? (() => new Date());
  const adminToken = options.adminToken ?? generateToken('sga');
  const brokerToken = options.brokerToken ?? generateToken('sgb');
  const replica = new PolicyReplica(options.store);
  const writer = new Writer(options.store, replica, clock);
  const metrics = createSidecarMetrics();
  replica.on('change', () => metrics.changesApplied.inc());

  const ledger =
    options.ledger ??
    (options.store instanceof RedisPolicyStore
      ? new RedisSessionLedger({ redis: options.store.redisClient, prefix: options.store.keyPrefix, now: () => clock().getTime() })
      : new MemorySessionLedger(() => clock().getTime()));

  await replica.start();
  // The start-up writes are idempotent: a store that is briefly unreachable, or whose replicas have not yet
  // confirmed (right after a Sentinel or Cluster start), delays the start instead of ending the process.
  const startupWrite = async (action: string, build: Parameters<Writer['write']>[2]) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await writer.write({ principal: 'system' }, action, build);
      } catch (e) {
        const transient = isScopeGateError(e) && (e.code === 'STORE_NOT_REPLICATED' || e.code === 'STORE_UNAVAILABLE');
        if (!transient || attempt >= 60) throw e;
        if (attempt === 0) logger.warn({ action, code: e.code }, 'start-up write not confirmed by the store yet; retrying every second');
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
  };
  await startupWrite('builtins.ensure', ensureBuiltins);
  if (replica.model.count('signingKey') === 0) {
    await startupWrite('signing_key.create', ensureSigningKey(await newSigningKey(clock().toISOString())));
  }

  const ctx = {
    store: options.store,
    replica,
    writer,
    logger,
    adminToken,
    brokerToken,
    clock,
    routes: new RouteRegistry(),
    ledger,
    sessionLimits: options.sessionLimits ?? maxSessionLimits,
    rateLimiter: new AdminRateLimiter(options.rateLimits ?? DEFAULT_ADMIN_RATE_LIMITS),
    metrics,
    tokenIssuer: options.tokenIssuer ?? 'scopegate',
    // One verifier (one cache of the provider's keys) for users' MQTT logins and their delegation self-service.
    verifyUserToken: options.trustedIssuer ? trustedIssuerVerifier(options.trustedIssuer) : null,
    ...(options.heartbeatMs ? { heartbeatMs: options.heartbeatMs } : {}),
  };
  const answers = createDecisionAnswers({
    replica,
    clock,
    tokenIssuer: ctx.tokenIssuer,
    verifyUserToken: ctx.verifyUserToken,
    // One throttle for both ways a CONNECT is decided (the Express route and the fast path).
    throttle: options.throttle ?? new LoginThrottle(),
    sessions: { ledger, limits: ctx.sessionLimits, log: logger },
  });
  const app = createApp({ ...ctx, answers });

  let server: Server | undefined;
  return {
    ...ctx,
    app,
    /** Listens on `port` (0 = ephemeral) and resolves with the port chosen. */
    async listen(port: number, host = '127.0.0.1'): Promise<number> {
      const fast = fastRoutes({ ...ctx, answers, ledgerReport: (body) => ledgerReportAnswer(ctx, body) });
      server = createServer((req, res) => {
        if (!fast(req, res)) app(req, res);
      });
      const chosen = await listenOn(server, port, host, 'SIDECAR_PORT');
      server.keepAliveTimeout = 65_000;
      server.on('clientError', answerClientError);
      return chosen;
    },
    async close(): Promise<void> {
      replica.stop();
      if (server) {
        const s = server;
        await new Promise<void>((resolve) => {
          s.close(() => resolve());
          s.closeAllConnections();
        });
      }
      await ledger.close();
      await options.store.close();
    },
  };
}

export type Sidecar = Awaited<ReturnType<typeof createSidecar>>;

/**
 * Requests Node's HTTP parser refuses before Express sees them (a request line or headers over the size
 * limit, broken HTTP) still get SPEC §3's JSON error body instead of Node's empty one.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  const pending = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || pending?.headersSent) {
    socket.destroy();
    return;
  }
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const message = status === 431 ? 'The request line or headers are too large.' : status === 408 ? 'The request took too long to arrive.' : 'The request is not valid HTTP.';
  const body = JSON.stringify(new ScopeGateError('BAD_REQUEST', message).toBody());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export function generateToken(prefix: string): string {
  return `${prefix}_${randomBytes(24).toString('base64url')}`;
}
