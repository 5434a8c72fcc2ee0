import type { Logger } from 'pino';
import type { ConnectBatchResult, ConnectRequest, ConnectResponse } from '../../shared/broker-wire.ts';
import { isScopeGateError, ScopeGateError } from '../../shared/errors.ts';
import type { LoginThrottle } from '../credentials/login-throttle.ts';
import { prefixOf, verifySecret } from '../credentials/secrets.ts';
import { verifyActorToken } from '../credentials/signing-keys.ts';
import { kidOf, trustedIssuerVerifier, type TrustedIssuerConfig } from '../credentials/trusted-issuer.ts';
import { sessionGrantFor } from '../engine/session-grant.ts';
import type { PolicyModel } from '../model/policy-model.ts';
import type { ActorRecord } from '../model/records.ts';

export interface ConnectDeciderOptions {
  tokenIssuer: string;
  throttle: LoginThrottle;
  trustedIssuer?: TrustedIssuerConfig | null;
}

/** What a CONNECT is decided from: the replica's current model and the (injected) clock. */
export interface ConnectSources {
  model: () => PolicyModel;
  clock: () => Date;
}

/** One CONNECT being decided, carried through the steps. */
interface Attempt {
  readonly username: string;
  readonly password: string;
  readonly address: string | undefined;
  actor?: ActorRecord;
  /** Epoch ms at which the credential expires (JWT exp); null for secrets. */
  expiresAt: number | null;
}

/** A step answers the CONNECT (a denial, or the final grant) or returns undefined to go on to the next. */
type Step = (a: Attempt) => ConnectResponse | undefined | Promise<ConnectResponse | undefined>;

export type ConnectDecider = (input: ConnectRequest) => Promise<ConnectResponse>;

const BAD_CREDENTIALS = 'Unknown actor or wrong credentials.';

/**
 * Decides an MQTT CONNECT in named steps, in order:
 * `refuseWhileThrottled → findActor → verifyCredentials → grantSession`.
 * The first step that answers decides. A bad-credentials denial counts as a failed login for the throttle; a
 * grant clears the username's failures.
 */
export function createConnectDecider(src: ConnectSources, options: ConnectDeciderOptions): ConnectDecider {
  const external = options.trustedIssuer ? trustedIssuerVerifier(options.trustedIssuer) : null;
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

  /** A JWT (ours, or the trusted identity provider's) or an actor secret. */
  const verifyCredentials: Step = async (a) => {
    const actor = a.actor!;
    if (a.password.split('.').length === 3) {
      // A token of ours names one of our keys; anything else may come from the trusted identity provider.
      const kid = kidOf(a.password);
      if (external && (kid === undefined || !src.model().get('signingKey', kid))) {
        const check = await external(a.password, src.clock());
        if (!check.ok || !actor.externalSubject || check.sub !== actor.externalSubject) return badCredentials(a);
        a.expiresAt = check.exp * 1000;
      } else {
        const check = await verifyActorToken(src.model(), options.tokenIssuer, a.password, src.clock());
        if (!check.ok || check.payload.sub !== actor.id) return badCredentials(a);
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
    const session = sessionGrantFor(src.model(), a.actor!.id, a.expiresAt);
    if (!session) return { decision: 'denied', reason: 'not_authorized', message: 'This actor may not connect (disabled, or outside its project).' };
    throttle.succeed(a.username);
    return { decision: 'allowed', session };
  };

  const steps: readonly Step[] = [refuseWhileThrottled, findActor, verifyCredentials, grantSession];

  return async (input) => {
    const attempt: Attempt = { username: input.username, password: input.password, address: input.remoteAddress, expiresAt: null };
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
