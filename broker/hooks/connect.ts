import { randomUUID } from 'node:crypto';
import type { AuthenticateHandler, Client, PreConnectHandler } from 'aedes';
import type { ConnectResponse, SessionGrant } from '../../shared/broker-wire.ts';
import { connectionClosed, connectPacketOf, forgetCredentials, packetSizeLimit, remoteAddressOf, type ConnectPacketView } from '../aedes-internals.ts';
import { countLimitEvent } from '../limits/limit-counters.ts';
import type { BrokerContext } from '../context.ts';
import { initLedgerSlot } from '../ledger-reporter.ts';
import { initStartSlot } from '../session-control.ts';
import { SidecarUnavailableError } from '../sidecar-client.ts';
import { initStateSlot, stateOf } from '../session-registry.ts';
import { decidePublish, isRefusal, sessionStateFor } from '../session-state.ts';
import { rewritePending, subscriptionRewriter } from './rewrite-subscriptions.ts';

/** CONNACK return codes of MQTT 3.1.1. */
export const CONNACK = { IDENTIFIER_REJECTED: 2, SERVER_UNAVAILABLE: 3, BAD_CREDENTIALS: 4, NOT_AUTHORIZED: 5 } as const;
type Outcome = { ok: true; grant: SessionGrant } | { ok: false; returnCode: number; reason: string };
const OUTCOME = Symbol('scopegate.connectOutcome');
type WithOutcome = Client & { [OUTCOME]?: Outcome };


/**
 * preConnect: the CONNECT is decided here, before Aedes sets the client id, because the client id must be
 * rewritten: inside the broker it is `<actorId>/<clientId>`, so two actors choosing the same client id never
 * take over or share each other's session. The will is authorized and rewritten here too. The outcome is
 * kept on the client; `authenticate` turns it into the CONNACK code.
 */
export function preConnect(ctx: BrokerContext): PreConnectHandler {
  const prepareClient = clientPreparer(ctx);
  return (client, packet, callback) => {
    prepareClient(client);
    decide(ctx, client, connectPacketOf(packet)).then(
      (outcome) => {
        (client as WithOutcome)[OUTCOME] = outcome;
        callback(null, true);
      },
      (err: unknown) => {
        ctx.logger.error({ err }, 'connect decision failed');
        (client as WithOutcome)[OUTCOME] = { ok: false, returnCode: CONNACK.SERVER_UNAVAILABLE, reason: 'internal' };
        callback(null, true);
      },
    );
  };
}

/**
 * What every connection carries for its whole life, installed before its CONNECT is decided. The listeners and
 * hooks are made here once per broker and shared by every client (each finds its client through Aedes' back
 * references), not made per connection: closures made per client were ~1 KiB of every held connection. And a
 * closure made inside the preConnect handler would keep that CONNECT's packet (password included) and Aedes'
 * callback alive for as long as the connection lives, since closures share their scope's context in V8.
 */
function clientPreparer(ctx: BrokerContext): (client: Client) => void {
  const installRewriter = subscriptionRewriter(ctx);
  const maxPacketBytes = ctx.config.limitDefaults.maxPacketBytes;
  const limitPackets = packetSizeLimit(maxPacketBytes, (client, length) => {
    ctx.metrics.decisions.labels('packet', 'denied', 'maxPacketBytes').inc();
    const limits = stateOf(client)?.limits;
    if (limits) countLimitEvent(limits.counters, 'refused', 'maxPacketBytes');
    ctx.logger.info({ clientId: client.id?.slice(0, 200), length, max: maxPacketBytes }, 'packet too large: connection closed');
  });
  // However the connection ends (before or after CONNACK), the session's ledger slot is given back and the
  // session is freed: also when the close comes before Aedes registered the client (between authenticate and
  // CONNACK), when Aedes never reports the end with 'clientDisconnect'.
  const onClosed = connectionClosed((client) => {
    ctx.ledger.ended(client);
    ctx.sessions.ended(client);
  });
  return (client) => {
    // ScopeGate's per-client slots are added here, all at once and in one order, so that every Aedes client
    // object keeps one hidden class (Aedes reads client properties on every packet).
    (client as WithOutcome)[OUTCOME] = undefined;
    initStateSlot(client);
    initLedgerSlot(client);
    initStartSlot(client);
    installRewriter(client);
    limitPackets(client);
    onClosed(client);
  };
}

async function decide(ctx: BrokerContext, client: Client, packet: ConnectPacketView): Promise<Outcome> {
  const username = typeof packet.username === 'string' ? packet.username : '';
  const password = Buffer.isBuffer(packet.password) ? packet.password.toString('utf8') : '';
  forgetCredentials(packet);
  // In Redis mode every session needs persistence (wills, subscriptions, queues) at CONNECT.
  if (ctx.redisHealth && !ctx.redisHealth.up) return { ok: false, returnCode: CONNACK.SERVER_UNAVAILABLE, reason: 'redis_unavailable' };
  if (!packet.clean && !packet.clientId) return { ok: false, returnCode: CONNACK.IDENTIFIER_REJECTED, reason: 'empty_client_id_persistent' };
  if (!username || !password) return { ok: false, returnCode: CONNACK.BAD_CREDENTIALS, reason: 'missing_credentials' };

  const started = process.hrtime.bigint();
  const sessionId = ctx.ledger.newSessionId();
  const clientId = packet.clientId.slice(0, 256);
  const remoteAddress = remoteAddressOf(client);
  let response: ConnectResponse;
  try {
    response = await ctx.sidecar.connect({
      clientId,
      username: username.slice(0, 256),
      password: password.slice(0, 8192),
      remoteAddress,
      brokerId: ctx.ledger.brokerId,
      sessionId,
    });
    ctx.metrics.sidecarSeconds.labels('connect', 'ok').observe(Number(process.hrtime.bigint() - started) / 1e9);
  } catch (err) {
    ctx.metrics.sidecarSeconds.labels('connect', 'unavailable').observe(Number(process.hrtime.bigint() - started) / 1e9);
    if (err instanceof SidecarUnavailableError) return { ok: false, returnCode: CONNACK.SERVER_UNAVAILABLE, reason: 'sidecar_unavailable' };
    throw err;
  } finally {
    ctx.ledger.decided();
  }
  if (response.decision === 'denied') {
    const returnCode =
      response.reason === 'not_authorized' ? CONNACK.NOT_AUTHORIZED : response.reason === 'session_limit' ? CONNACK.SERVER_UNAVAILABLE : CONNACK.BAD_CREDENTIALS;
    if (response.reason === 'session_limit') ctx.logger.info({ clientId: packet.clientId.slice(0, 200), actorId: username.slice(0, 120), message: response.message }, 'session limit reached');
    return { ok: false, returnCode, reason: response.reason };
  }

  // From here on the grant is the one this broker keeps: equal grants of live sessions are one set of objects.
  const grant = ctx.sessions.keptGrant(response.session);
  // The sidecar reserved this session's slot in the ledger: from here on every way out gives it back.
  ctx.ledger.reserved(client, sessionId, grant.actorId, clientId, remoteAddress);
  if ((client.conn as { destroyed?: boolean }).destroyed) ctx.ledger.ended(client);
  if (packet.will) {
    const decision = decidePublish(sessionStateFor(grant, 1), packet.will.topic);
    if (isRefusal(decision)) {
      ctx.ledger.ended(client);
      return { ok: false, returnCode: CONNACK.NOT_AUTHORIZED, reason: `will_${decision.refused}` };
    }
    packet.will.topic = decision;
  }
  // Aedes would generate `aedes_<uuid>` for an empty id; generate it here so it is inside the actor's space.
  packet.clientId = `${grant.actorId}/${packet.clientId || `auto-${randomUUID()}`}`;
  return { ok: true, grant };
}

/** authenticate: turns the outcome decided in preConnect into CONNACK 0 / 2 / 3 / 4 / 5. */
export function authenticate(ctx: BrokerContext): AuthenticateHandler {
  return (client, _username, _password, done) => {
    const outcome = (client as WithOutcome)[OUTCOME];
    // Cleared, not deleted: `delete` would turn every client object into a slow dictionary-mode object,
    // and Aedes reads client properties on every packet.
    (client as WithOutcome)[OUTCOME] = undefined;
    if (outcome?.ok && client.closed) {
      // The connection closed while the CONNECT was being decided: Aedes drops it after this hook, never
      // registers it and so never reports its end; a session started now would never be freed.
      ctx.metrics.decisions.labels('connect', 'denied', 'closed_before_connack').inc();
      return done(null, false);
    }
    if (outcome?.ok) {
      const grant = outcome.grant;
      ctx.sessions.start(client, grant);
      if (!client.clean) ctx.purge?.rememberPersistent(grant.actorId, client.id);
      // A change heard between the decision and now found no session to re-decide: check it here.
      ctx.live.sessionStarted(grant);
      ctx.ledger.connected(client);
      rewritePending(client, ctx);
      ctx.metrics.decisions.labels('connect', 'allowed', 'ok').inc();
      ctx.logger.info({ clientId: client.id, actorId: grant.actorId, tenantId: grant.tenantId, scopeId: grant.accessScopeId, namespace: grant.namespace }, 'connect allowed');
      return done(null, true);
    }
    ctx.ledger.ended(client);
    const returnCode = outcome?.returnCode ?? CONNACK.SERVER_UNAVAILABLE;
    const reason = outcome?.reason ?? 'no_decision';
    ctx.metrics.decisions.labels('connect', 'denied', reason).inc();
    ctx.logger.info({ clientId: client.id?.slice(0, 200), returnCode, reason }, 'connect refused');
    const err = Object.assign(new Error(`connect refused: ${reason}`), { returnCode });
    done(err as never, false);
  };
}
