import { createRemoteJWKSet, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';

export interface TrustedIssuerConfig {
  issuer: string;
  jwksUrl: string;
  audience: string | null;
}

export type ExternalTokenCheck = { ok: true; sub: string; exp: number } | { ok: false; reason: string };
/** Checks a JWT of the trusted identity provider; one per sidecar, so MQTT logins and the API share its key cache. */
export type ExternalTokenVerifier = (token: string, now: Date) => Promise<ExternalTokenCheck>;

/**
 * Users log in over MQTT with JWTs of a configured identity provider (Kinde, Auth0, …): username = the actorId
 * that represents the user, password = the provider's JWT, whose `sub` must be that actor's `externalSubject`.
 * Keys come from the provider's JWKS (fetched, cached and refreshed by jose); only asymmetric algorithms are
 * accepted, so a token "signed" with a public key as an HMAC secret is refused; `iss`, `aud` (when configured),
 * `exp` and `nbf` are checked. jose's errors are converted here, once, into a reason.
 */
export function trustedIssuerVerifier(config: TrustedIssuerConfig): ExternalTokenVerifier {
  const keys = createRemoteJWKSet(new URL(config.jwksUrl), { cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000, timeoutDuration: 2_000 });
  return async (token, now) => {
    try {
      const { payload } = await jwtVerify(token, keys, {
        algorithms: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'],
        issuer: config.issuer,
        ...(config.audience ? { audience: config.audience } : {}),
        currentDate: now,
        requiredClaims: ['sub', 'exp'],
      });
      return { ok: true, sub: (payload as JWTPayload & { sub: string }).sub, exp: payload.exp! };
    } catch (e) {
      if (e instanceof joseErrors.JWTExpired) return { ok: false, reason: 'token expired' };
      if (e instanceof joseErrors.JOSEError) return { ok: false, reason: e.code };
      return { ok: false, reason: 'malformed token' };
    }
  };
}

/** The `kid` of a JWT's protected header, or undefined (never throws). */
export function kidOf(token: string): string | undefined {
  try {
    const kid = decodeProtectedHeader(token).kid;
    return typeof kid === 'string' ? kid : undefined;
  } catch {
    return undefined;
  }
}
