import { Router, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import {
  connectBatchRequestSchema,
  connectBatchResponseSchema,
  connectRequestSchema,
  connectResponseSchema,
  refreshRequestSchema,
  refreshResponseSchema,
  ledgerReportSchema,
  ledgerReportResponseSchema,
  type DisconnectEvent,
  type LedgerReport,
  type LedgerReportResponse,
  type BrokerChangeEvent,
} from '../../shared/broker-wire.ts';
import { jwks } from '../credentials/signing-keys.ts';
import { actorsDisabledBy, inputsOfChange } from '../engine/grant-inputs.ts';
import { topicSpacesOfChange } from '../engine/topic-spaces.ts';
import { authenticateBroker } from '../http/auth.ts';
import * as responses from '../http/responses.ts';
import type { DecisionAnswers } from '../http/decision-answers.ts';
import { parse } from '../http/validate.ts';
import type { PolicyModel } from '../model/policy-model.ts';
import type { StoredRecord } from '../model/records.ts';
import type { ChangeEvent } from '../store/policy-store.ts';
import type { SidecarContext } from './context.ts';
import { sessionEntryFor } from '../ledger/session-entry.ts';

export interface BrokerRouteOptions {
  /** The CONNECT answers, shared with the fast path (one throttle, one trusted-issuer key cache). */
  answers: DecisionAnswers;
  heartbeatMs?: number;
}

/**
 * The broker-facing decision API (`/v1/broker/*`, BROKER_TOKEN) and the public JWKS. A CONNECT is decided
 * here once (credentials → actor → session grant); everything after it the broker decides in memory from the
 * grant, which it refreshes when the change feed names one of the grant's inputs.
 */
export function brokerRoutes(ctx: SidecarContext, options: BrokerRouteOptions): Router {
  const r = Router();
  const { answers } = options;
  const heartbeatMs = options.heartbeatMs ?? 2_000;
  const model = () => ctx.replica.model;

  ctx.routes.add({ method: 'get', path: '/.well-known/jwks.json', tag: 'credentials', summary: 'Public keys of actor JWTs', root: true, public: true, response: responses.jwks });
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

  ctx.routes.add({ method: 'post', path: '/broker/connect', tag: 'broker', summary: 'Decide an MQTT CONNECT (BROKER_TOKEN)', body: connectRequestSchema, response: connectResponseSchema });
  b.post('/connect', async (req, res) => {
    res.json(await answers.connect(req.body, res.locals.log as Logger));
  });

  ctx.routes.add({ method: 'post', path: '/broker/connect/batch', tag: 'broker', summary: 'Decide several MQTT CONNECTs at once, answered in order (BROKER_TOKEN)', body: connectBatchRequestSchema, response: connectBatchResponseSchema });
  b.post('/connect/batch', async (req, res) => {
    res.json(await answers.connectBatch(req.body, res.locals.log as Logger));
  });

  ctx.routes.add({ method: 'post', path: '/broker/sessions', tag: 'broker', summary: 'Re-decide live sessions of actors (BROKER_TOKEN)', body: refreshRequestSchema, response: refreshResponseSchema });
  b.post('/sessions', (req, res) => {
    res.json(answers.refresh(req.body));
  });

  ctx.routes.add({ method: 'post', path: '/broker/ledger', tag: 'broker', summary: 'Report session events to the live session ledger and renew the broker lease (BROKER_TOKEN)', body: ledgerReportSchema, response: ledgerReportResponseSchema });
  b.post('/ledger', async (req, res) => {
    res.json(await ledgerReportAnswer(ctx, req.body));
  });

  // Every connected broker hears the same event: computed once per change.
  let last: BrokerChangeEvent | null = null;
  const brokerEventOf = (e: ChangeEvent, displaced: ReadonlyMap<string, StoredRecord>): BrokerChangeEvent =>
    last?.seq === e.seq ? last : (last = toBrokerEvent(model(), e, displaced));

  ctx.routes.add({ method: 'get', path: '/broker/changes', tag: 'broker', summary: 'Change feed (text/event-stream) for the broker (BROKER_TOKEN)', response: responses.eventStream, contentType: 'text/event-stream' });
  b.get('/changes', (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.flushHeaders();
    const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    send('hello', { revision: ctx.replica.seq });
    const onChange = (e: ChangeEvent, displaced: ReadonlyMap<string, StoredRecord>) => send('change', brokerEventOf(e, displaced));
    // A reload after a gap may have changed anything: tell the broker to re-decide every session.
    const onReload = (seq: number) => send('change', { seq, inputs: [], all: true } satisfies BrokerChangeEvent);
    ctx.replica.on('change', onChange);
    ctx.replica.on('reloaded', onReload);
    // An admin's disconnect, heard from any sidecar sharing the ledger; only the owning broker acts on it.
    const stopDisconnects = ctx.ledger.onDisconnect((d) => send('disconnect', d satisfies DisconnectEvent));
    const heartbeat = setInterval(() => send('heartbeat', { revision: ctx.replica.seq }), heartbeatMs);
    req.on('close', () => {
      clearInterval(heartbeat);
      ctx.replica.off('change', onChange);
      ctx.replica.off('reloaded', onReload);
      stopDisconnects();
    });
  });
  r.use('/v1/broker', b);
  return r;
}

/** A committed change as the broker hears it: the grant inputs it wrote (none for most writes). */
export function toBrokerEvent(model: PolicyModel, e: ChangeEvent, displaced: ReadonlyMap<string, StoredRecord>): BrokerChangeEvent {
  const { spaces, deletedActors } = topicSpacesOfChange(model, e, displaced);
  const disabledActors = actorsDisabledBy(e);
  return {
    seq: e.seq,
    inputs: inputsOfChange(model, e, displaced),
    all: false,
    ...(spaces.length > 0 ? { spaces } : {}),
    ...(deletedActors.length > 0 ? { deletedActors } : {}),
    ...(disabledActors.length > 0 ? { disabledActors } : {}),
  };
}

/** POST /v1/broker/ledger from the raw body, for both the Express route and the fast path (http/fast-routes.ts). */
export function ledgerReportAnswer(ctx: SidecarContext, body: unknown): Promise<LedgerReportResponse> {
  return applyLedgerReport(ctx, parse(ledgerReportSchema, body, 'body'));
}

/** How far back a reservation is kept by a broker's sync even if the broker does not list it yet. */
const SYNC_KEEPS_RESERVATIONS_MS = 10_000;

/**
 * A broker's report: its events in order, then its full session list when it resyncs, then the lease
 * renewal whose answer tells the broker whether the ledger agrees with it.
 */
export async function applyLedgerReport(ctx: SidecarContext, report: LedgerReport): Promise<LedgerReportResponse> {
  for (const e of report.events) {
    if (e.type === 'connected') await ctx.ledger.markConnected(e.sessionId);
    else if (e.type === 'subscriptions') await ctx.ledger.setSubscriptions(e.sessionId, e.subscriptions);
    else await ctx.ledger.release(e.sessionId);
  }
  if (report.sync) {
    const model = ctx.replica.model;
    const entries = report.sync.flatMap((s) => sessionEntryFor(model, report.brokerId, s) ?? []);
    await ctx.ledger.sync(report.brokerId, entries, ctx.clock().getTime() - SYNC_KEEPS_RESERVATIONS_MS, report.leaseMs);
  }
  return ctx.ledger.heartbeat(report.brokerId, report.leaseMs);
}
