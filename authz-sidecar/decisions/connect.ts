import type { Logger } from 'pino';
import type { ConnectBatchResult, ConnectRequest, ConnectResponse, SessionGrant } from '../../shared/broker-wire.ts';
import { sessionEntryFor, type SessionLimits } from '../ledger/session-entry.ts';
import type { SessionLedger } from '../ledger/session-ledger.ts';
import { isScopeGateError, ScopeGateError } from '../../shared/errors.ts';
import type { LoginThrottle } from '../credentials/login-throttle.ts';
import { prefixOf, verifySecret } from '../credentials/secrets.ts';
import { verifyActorToken } from '../credentials/signing-keys.ts';
import { kidOf, type ExternalTokenVerifier } from '../credentials/trusted-issuer.ts';
import { sessionGrantFor } from '../engine/session-grant.ts';
import type { PolicyModel } from '../model/policy-model.ts';
import type { ActorRecord } from '../model/records.ts';

export interface ConnectDeciderOptions {
  tokenIssuer: string;
  throttle: LoginThrottle;
  /** The trusted identity provider's verifier (users' MQTT logins); null when none is configured. */
  verifyUserToken?: ExternalTokenVerifier | null;
}

/** What a CONNECT is decided from: the replica's current model and the (injected) clock. */
export interface ConnectSources {
  model: () => PolicyModel;
  clock: () => Date;
  /** The live session ledger an allowed CONNECT reserves its slot in (when the broker names itself and the session). */
  sessions?: { ledger: SessionLedger; limits: SessionLimits; log: Logger };
}

/** Lease a reservation gives a broker that has not sent its first ledger heartbeat yet. */
const RESERVATION_LEASE_MS = 30_000;

/** One CONNECT being decided, carried through the steps. */
interface Attempt {
  readonly input: ConnectRequest;
  readonly username: string;
  readonly password: string;
  readonly address: string | undefined;
  actor?: ActorRecord;
  /** A delegated token (RFC 8693 `act.sub` = this actor): the principal subject it acts for. */
  onBehalfOf?: string;
  /** Epoch ms at which the credential expires (JWT exp); null for secrets. */
  expiresAt: number | null;
  session?: SessionGrant;
}

/** A step answers the CONNECT (a denial, or the final grant) or returns undefined to go on to the next. */
type Step = (a: Attempt) => ConnectResponse | undefined | Promise<ConnectResponse | undefined>;

export type ConnectDecider = (input: ConnectRequest) => Promise<ConnectResponse>;

const BAD_CREDENTIALS = 'Unknown actor or wrong credentials.';

/**
 * Decides an MQTT CONNECT in named steps, in order:
 * `refuseWhileThrottled → findActor → verifyCredentials → grantSession → reserveSessionSlot`.
 * The first step that answers decides. A bad-credentials denial counts as a failed login for the throttle; a
 * grant clears the username's failures.
 */
export function createConnectDecider(src: ConnectSources, options: ConnectDeciderOptions): ConnectDecider {
  const external = options.verifyUserToken ?? null;
  const { throttle } = options;

  const badCredentials = (a: Attempt): ConnectResponse => {
    throttle.fail(a.address, a.username);
    return { decision: 'denied', reason: 'bad_credentials', message: BAD_CREDENTIALS };
  };

  const refuseWhileThrottled: Step = (a) => {
    const wait = throttle.blockedFor(a.address, a.username);
    if (wait > 0) return { decision: 'denied', reason: 'rate_limited', message: `Too many failed logins; retry in ${Math.ceil(wait / 1000)} s.` };
    return undefined;
  };

  const findActor: Step = (a) => {
    const actor = src.model().get('actor', a.username);
    if (!actor) return badCredentials(a);
    a.actor = actor;
    return undefined;
  };

  const isOurKey = (kid: string | undefined) => kid !== undefined && src.model().get('signingKey', kid) !== undefined;

  /** A JWT (ours, or the trusted identity provider's) or an actor secret. */
  const verifyCredentials: Step = async (a) => {
    const actor = a.actor!;
    if (a.password.split('.').length === 3) {
      // A token of ours names one of our keys; anything else may come from the trusted identity provider.
      // (Without one configured, its header is not decoded here: verifyActorToken decodes it anyway.)
      if (external && !isOurKey(kidOf(a.password))) {
        const check = await external(a.password, src.clock());
        if (!check.ok || !actor.externalSubject || check.sub !== actor.externalSubject) return badCredentials(a);
        a.expiresAt = check.exp * 1000;
      } else {
        const check = await verifyActorToken(src.model(), options.tokenIssuer, a.password, src.clock());
        if (!check.ok) return badCredentials(a);
        // A delegated token names the principal as `sub` and this actor as `act.sub` (the username stays the actor).
        const act = (check.payload as { act?: { sub?: unknown } }).act;
        if (act !== undefined) {
          if (typeof act !== 'object' || act === null || act.sub !== actor.id || check.payload.sub === actor.id) return badCredentials(a);
          a.onBehalfOf = check.payload.sub;
        } else if (check.payload.sub !== actor.id) return badCredentials(a);
        a.expiresAt = check.payload.exp * 1000;
      }
      return undefined;
    }
    const prefix = prefixOf(a.password);
    const candidates = prefix ? src.model().referrersOf(actor.id, 'actorSecret').filter((s) => s.prefix === prefix) : [];
    let matched = false;
    for (const c of candidates) if (await verifySecret(a.password, c.hash)) matched = true;
    return matched ? undefined : badCredentials(a);
  };

  const grantSession: Step = (a) => {
    const delegated = a.onBehalfOf ? { principalSubjectId: a.onBehalfOf, nowMs: src.clock().getTime() } : undefined;
    const session = sessionGrantFor(src.model(), a.actor!.id, a.expiresAt, delegated);
    if (!session) {
      const message = delegated ? 'No delegation grant in force for this actor and principal, or the actor may not connect.' : 'This actor may not connect (disabled, or outside its project).';
      return { decision: 'denied', reason: 'not_authorized', message };
    }
    throttle.succeed(a.address, a.username);
    a.session = session;
    return undefined;
  };

  /**
   * The allowed session takes its slot in the live session ledger now, atomically against every other CONNECT
   * of any sidecar, so session-count limits are exact: refused (`session_limit`, CONNACK 3) when a limited scope is full. With
   * the ledger unreachable: unavailable (CONNACK 3) when a limit applies (it cannot be checked), else allowed
   * without an entry — the broker's next ledger heartbeat finds the difference and resyncs.
   */
  const reserveSessionSlot: Step = async (a) => {
    const allowed: ConnectResponse = { decision: 'allowed', session: a.session! };
    const { brokerId, sessionId } = a.input;
    if (!src.sessions || !brokerId || !sessionId) return allowed;
    const entry = sessionEntryFor(src.model(), brokerId, {
      sessionId,
      actorId: a.session!.actorId,
      clientId: a.input.clientId,
      connectedAt: src.clock().getTime(),
      state: 'connecting',
      subscriptions: [],
      ...(a.address ? { remoteAddress: a.address.slice(0, 200) } : {}),
    });
    if (!entry) return allowed;
    const limits = src.sessions.limits(src.model(), entry);
    try {
      const reserved = await src.sessions.ledger.reserve(entry, limits, RESERVATION_LEASE_MS);
      if (reserved.ok) return allowed;
      return { decision: 'denied', reason: 'session_limit', message: `Session limit reached: maxSessions of scope ${reserved.scopeId} is ${reserved.max} (${reserved.count} connected).` };
    } catch (err) {
      if (limits.length > 0) throw err;
      src.sessions.log.warn({ err: (err as Error).message, sessionId }, 'session ledger unreachable: session allowed without a ledger entry');
      return allowed;
    }
  };

  const steps: readonly Step[] = [refuseWhileThrottled, findActor, verifyCredentials, grantSession, reserveSessionSlot];

  return async (input) => {
    const attempt: Attempt = { input, username: input.username, password: input.password, address: input.remoteAddress, expiresAt: null };
    for (const step of steps) {
      const answer = await step(attempt);
      if (answer) return answer;
    }
    throw new Error('connect decision: no step answered');
  };
}

/**
 * Decides a batch of CONNECTs, each exactly as on its own (same steps, same throttle), answered in order. A
 * decision that throws answers its own entry with an error (logged once here) and leaves the others alone:
 * one broken actor record must not refuse a whole reconnect storm.
 */
export async function decideConnectBatch(decide: (input: ConnectRequest) => Promise<ConnectResponse>, requests: ConnectRequest[], log: Logger): Promise<ConnectBatchResult[]> {
  return Promise.all(
    requests.map((request) =>
      decide(request).catch((err: unknown): ConnectBatchResult => {
        if (!isScopeGateError(err)) log.error({ err, actorId: request.username.slice(0, 64) }, 'unexpected error in a batched connect decision');
        return { error: (isScopeGateError(err) ? err : new ScopeGateError('INTERNAL')).toBody().error };
      }),
    ),
  );
}
