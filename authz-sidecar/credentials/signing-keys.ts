import { SignJWT, createLocalJWKSet, errors as joseErrors, exportJWK, generateKeyPair, importJWK, jwtVerify, type JWK, type JWTPayload } from 'jose';
import type { PolicyModel } from '../model/policy-model.ts';
import type { SigningKeyRecord } from '../model/records.ts';
import type { Tx } from '../service/tx.ts';
import { newId } from '../service/tx.ts';

/**
 * Actor JWTs: ES256 only (the algorithm is pinned on verification, so `alg: none` and HS256-with-the-public-
 * key tokens are refused), signed with a key kept in the store so every sidecar replica signs and verifies
 * with the same keys; public keys are served at /.well-known/jwks.json with their `kid`.
 */
export const TOKEN_ALG = 'ES256';
export const TOKEN_AUDIENCE = 'scopegate-mqtt';

/** Generates a key record when the store has none (idempotent: an empty transaction otherwise). */
export async function newSigningKey(now: string): Promise<SigningKeyRecord> {
  const { publicKey, privateKey } = await generateKeyPair(TOKEN_ALG, { extractable: true });
  const id = newId('signingKey');
  const publicJwk = { ...(await exportJWK(publicKey)), kid: id, alg: TOKEN_ALG, use: 'sig' };
  const privateJwk = { ...(await exportJWK(privateKey)), kid: id, alg: TOKEN_ALG };
  return { kind: 'signingKey', id, tenantId: null, alg: TOKEN_ALG, publicJwk, privateJwk, createdAt: now, updatedAt: now };
}

export function ensureSigningKey(candidate: SigningKeyRecord) {
  return (tx: Tx): void => {
    tx.depend('global');
    if (tx.model.count('signingKey') === 0) tx.put(candidate);
  };
}

/** The newest signing key: tokens are signed with it; all stored keys verify. */
export function currentKey(model: PolicyModel): SigningKeyRecord | undefined {
  let newest: SigningKeyRecord | undefined;
  for (const k of model.all('signingKey')) if (!newest || k.createdAt > newest.createdAt) newest = k;
  return newest;
}

export function jwks(model: PolicyModel): { keys: JWK[] } {
  return { keys: [...model.all('signingKey')].map((k) => k.publicJwk as JWK) };
}

export interface ActorTokenClaims {
  actorId: string;
  tenantId: string;
  ttlSeconds: number;
}

export async function signActorToken(model: PolicyModel, issuer: string, claims: ActorTokenClaims, now: Date): Promise<{ token: string; expiresAt: string }> {
  const key = currentKey(model);
  if (!key) throw new Error('no signing key');
  const privateKey = await privateKeyOf(key);
  const iat = Math.floor(now.getTime() / 1000);
  const exp = iat + claims.ttlSeconds;
  const token = await new SignJWT({ tid: claims.tenantId })
    .setProtectedHeader({ alg: TOKEN_ALG, kid: key.id, typ: 'JWT' })
    .setSubject(claims.actorId)
    .setIssuer(issuer)
    .setAudience(TOKEN_AUDIENCE)
    .setIssuedAt(iat)
    .setNotBefore(iat)
    .setExpirationTime(exp)
    .setJti(newId('signingKey').slice(4))
    .sign(privateKey);
  return { token, expiresAt: new Date(exp * 1000).toISOString() };
}

/**
 * Imported keys are kept: importing a JWK costs more than verifying a signature with it (it showed as a
 * sixth of the sidecar's CPU per MQTT CONNECT). The key set is rebuilt when the stored keys change; jose's
 * local key set keeps each imported public key for its lifetime.
 */
let cachedKeySet: { ids: string; keySet: ReturnType<typeof createLocalJWKSet> } | null = null;
function keySetOf(model: PolicyModel): ReturnType<typeof createLocalJWKSet> {
  const keys = jwks(model);
  const ids = keys.keys.map((k) => k.kid).join(',');
  if (cachedKeySet?.ids !== ids) cachedKeySet = { ids, keySet: createLocalJWKSet(keys) };
  return cachedKeySet.keySet;
}

const privateKeys = new Map<string, Promise<CryptoKey | Uint8Array>>();
function privateKeyOf(key: SigningKeyRecord): Promise<CryptoKey | Uint8Array> {
  const cacheKey = key.id;
  let imported = privateKeys.get(cacheKey);
  if (!imported) {
    imported = importJWK(key.privateJwk as JWK, TOKEN_ALG);
    if (privateKeys.size > 16) privateKeys.clear();
    privateKeys.set(cacheKey, imported);
  }
  return imported;
}

export type TokenCheck = { ok: true; payload: JWTPayload & { sub: string; exp: number } } | { ok: false; reason: string };

/** Verifies an actor JWT. jose's errors are converted here, once, into a reason string. */
export async function verifyActorToken(model: PolicyModel, issuer: string, token: string, now: Date): Promise<TokenCheck> {
  try {
    const keySet = keySetOf(model);
    const { payload } = await jwtVerify(token, keySet, {
      algorithms: [TOKEN_ALG],
      issuer,
      audience: TOKEN_AUDIENCE,
      currentDate: now,
      requiredClaims: ['sub', 'exp', 'iat'],
    });
    return { ok: true, payload: payload as JWTPayload & { sub: string; exp: number } };
  } catch (e) {
    if (e instanceof joseErrors.JWTExpired) return { ok: false, reason: 'token expired' };
    if (e instanceof joseErrors.JWTClaimValidationFailed) return { ok: false, reason: `claim '${e.claim}' invalid` };
    if (e instanceof joseErrors.JOSEError) return { ok: false, reason: e.code };
    return { ok: false, reason: 'malformed token' };
  }
}
