import { Router, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import {
  connectBatchRequestSchema,
  connectRequestSchema,
  refreshRequestSchema,
  type BrokerChangeEvent,
  type ConnectResponse,
  type SessionGrant,
} from '../../shared/broker-wire.ts';
import { LoginThrottle } from '../credentials/login-throttle.ts';
import { kidOf, trustedIssuerVerifier, type TrustedIssuerConfig } from '../credentials/trusted-issuer.ts';
import { prefixOf, verifySecret } from '../credentials/secrets.ts';
import { jwks, verifyActorToken } from '../credentials/signing-keys.ts';
import { sessionGrantFor } from '../engine/session-grant.ts';
import { authenticateBroker } from '../http/auth.ts';
import { parse } from '../http/validate.ts';
import type { ChangeEvent } from '../store/policy-store.ts';
import type { SidecarContext } from './context.ts';

export interface BrokerRouteOptions {
  tokenIssuer: string;
  trustedIssuer?: TrustedIssuerConfig | null;
  throttle?: LoginThrottle;
  heartbeatMs?: number;
}

/**
 * The broker-facing decision API (`/v1/broker/*`, BROKER_TOKEN) and the public JWKS. A CONNECT is decided
 * here once (credentials → actor → session grant); everything after it the broker decides in memory from the
 * grant, which it refreshes when the change feed names the actor's tenant.
 */
export function brokerRoutes(ctx: SidecarContext, options: BrokerRouteOptions): Router {
  const r = Router();
  const throttle = options.throttle ?? new LoginThrottle();
  const heartbeatMs = options.heartbeatMs ?? 2_000;
  const model = () => ctx.replica.model;

  ctx.routes.add({ method: 'get', path: '/.well-known/jwks.json', tag: 'credentials', summary: 'Public keys of actor JWTs', root: true, public: true });
  r.get('/.well-known/jwks.json', (_req, res) => {
    res.setHeader('cache-control', 'public, max-age=300');
    res.json(jwks(model()));
  });

  const brokerAuth: RequestHandler = (req, _res, next) => {
    authenticateBroker(ctx.brokerToken, req.headers.authorization);
    next();
  };
  const b = Router();
  b.use(brokerAuth);

  ctx.routes.add({ method: 'post', path: '/broker/connect', tag: 'broker', summary: 'Decide an MQTT CONNECT (BROKER_TOKEN)', body: connectRequestSchema });
  const connect = connectDecider(ctx, { tokenIssuer: options.tokenIssuer, throttle, trustedIssuer: options.trustedIssuer ?? null });
  b.post('/connect', async (req, res) => {
    res.json(await connect(req.body, res.locals.log as Logger));
  });

  ctx.routes.add({ method: 'post', path: '/broker/connect/batch', tag: 'broker', summary: 'Decide several MQTT CONNECTs at once, answered in order (BROKER_TOKEN)', body: connectBatchRequestSchema });
  const connectBatch = connectBatchDecider(connect);
  b.post('/connect/batch', async (req, res) => {
    res.json(await connectBatch(req.body, res.locals.log as Logger));
  });

  ctx.routes.add({ method: 'post', path: '/broker/sessions', tag: 'broker', summary: 'Re-decide live sessions of actors (BROKER_TOKEN)', body: refreshRequestSchema });
  b.post('/sessions', (req, res) => {
    const { actorIds } = parse(refreshRequestSchema, req.body, 'body');
    const sessions: Record<string, SessionGrant | null> = {};
    for (const id of actorIds) sessions[id] = sessionGrantFor(model(), id, null);
    res.json({ revision: ctx.replica.seq, sessions });
  });

  ctx.routes.add({ method: 'get', path: '/broker/changes', tag: 'broker', summary: 'Change feed (text/event-stream) for the broker (BROKER_TOKEN)' });
  b.get('/changes', (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.flushHeaders();
    const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    send('hello', { revision: ctx.replica.seq });
    const onChange = (e: ChangeEvent) => send('change', toBrokerEvent(e));
    // A reload after a gap may have changed anything: tell the broker to re-decide every session.
    const onReload = (seq: number) => send('change', { seq, tenantIds: ['*'], actorIds: [] } satisfies BrokerChangeEvent);
    ctx.replica.on('change', onChange);
    ctx.replica.on('reloaded', onReload);
    const heartbeat = setInterval(() => send('heartbeat', { revision: ctx.replica.seq }), heartbeatMs);
    req.on('close', () => {
      clearInterval(heartbeat);
      ctx.replica.off('change', onChange);
      ctx.replica.off('reloaded', onReload);
    });
  });
  r.use('/v1/broker', b);
  return r;

  function toBrokerEvent(e: ChangeEvent): BrokerChangeEvent {
    const actorIds = new Set<string>();
    for (const rec of [...e.puts, ...e.deletes]) {
      const full = 'kind' in rec ? rec : undefined;
      if (!full) continue;
      if (rec.kind === 'actor') actorIds.add(rec.id);
      if ('actorId' in rec && typeof rec.actorId === 'string') actorIds.add(rec.actorId);
      if ('subjectId' in rec && typeof rec.subjectId === 'string') {
        const s = model().subject(rec.subjectId);
        if (s?.kind === 'actor') actorIds.add(s.id);
      }
    }
    return { seq: e.seq, tenantIds: e.partitions.filter((p) => p !== 'global'), actorIds: [...actorIds] };
  }
}

/**
 * Decides MQTT CONNECTs (credentials → actor → session grant), with the login throttle, and logs each
 * decision without the password. Shared by the Express route and the fast path in front of Express.
 */
export function connectDecider(ctx: SidecarContext, options: { tokenIssuer: string; throttle: LoginThrottle; trustedIssuer?: TrustedIssuerConfig | null }): (body: unknown, log: Logger) => Promise<ConnectResponse> {
  const external = options.trustedIssuer ? trustedIssuerVerifier(options.trustedIssuer) : null;
  const throttle = options.throttle;
  const model = () => ctx.replica.model;
  return async (body, log) => {
    const input = parse(connectRequestSchema, body, 'body');
    const answer = await decideConnect(input.username, input.password, input.remoteAddress);
    log.info({ clientId: input.clientId.slice(0, 64), actorId: input.username.slice(0, 64), decision: answer.decision, reason: answer.decision === 'denied' ? answer.reason : undefined }, 'mqtt connect decision');
    return answer;
  };

  async function decideConnect(username: string, password: string, address: string | undefined): Promise<ConnectResponse> {
    const wait = throttle.blockedFor(address, username);
    if (wait > 0) return { decision: 'denied', reason: 'rate_limited', message: `Too many failed logins; retry in ${Math.ceil(wait / 1000)} s.` };
    const denied = (reason: 'bad_credentials' | 'not_authorized', message: string): ConnectResponse => {
      if (reason === 'bad_credentials') throttle.fail(address, username);
      return { decision: 'denied', reason, message };
    };
    const actor = model().get('actor', username);
    if (!actor) return denied('bad_credentials', 'Unknown actor or wrong credentials.');

    let expiresAt: number | null = null;
    if (password.split('.').length === 3) {
      // A token of ours names one of our keys; anything else may come from the trusted identity provider.
      const kid = kidOf(password);
      if (external && (kid === undefined || !model().get('signingKey', kid))) {
        const check = await external(password, ctx.clock());
        if (!check.ok || !actor.externalSubject || check.sub !== actor.externalSubject) return denied('bad_credentials', 'Unknown actor or wrong credentials.');
        expiresAt = check.exp * 1000;
      } else {
        const check = await verifyActorToken(model(), options.tokenIssuer, password, ctx.clock());
        if (!check.ok || check.payload.sub !== actor.id) return denied('bad_credentials', 'Unknown actor or wrong credentials.');
        expiresAt = check.payload.exp * 1000;
      }
    } else {
      const prefix = prefixOf(password);
      const candidates = prefix ? model().referrersOf(actor.id, 'actorSecret').filter((s) => s.prefix === prefix) : [];
      let matched = false;
      for (const c of candidates) if (await verifySecret(password, c.hash)) matched = true;
      if (!matched) return denied('bad_credentials', 'Unknown actor or wrong credentials.');
    }
    const session = sessionGrantFor(model(), actor.id, expiresAt);
    if (!session) return denied('not_authorized', 'This actor may not connect (disabled, or outside its project).');
    throttle.succeed(username);
    return { decision: 'allowed', session };
  }
}

/** Decides a batch of CONNECTs, each exactly as on its own (same checks, same throttle), answered in order. */
export function connectBatchDecider(connect: (body: unknown, log: Logger) => Promise<ConnectResponse>) {
  return async (body: unknown, log: Logger): Promise<{ results: ConnectResponse[] }> => {
    const { requests } = parse(connectBatchRequestSchema, body, 'body');
    return { results: await Promise.all(requests.map((r) => connect(r, log))) };
  };
}
