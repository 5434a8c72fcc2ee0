import { createPublicKey, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, importJWK, type JWK, type JWTPayload } from 'jose';
import type { PolicyModel } from '../model/policy-model.ts';
import type { SigningKeyRecord } from '../model/records.ts';
import type { Tx } from '../service/tx.ts';
import { newId } from '../service/tx.ts';
import { VerifiedSignatures } from './verified-signatures.ts';

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
  /** RFC 8693: the token is issued for this principal subject (`sub`), the actor acting for it (`act.sub`). */
  onBehalfOf?: string;
}

export async function signActorToken(model: PolicyModel, issuer: string, claims: ActorTokenClaims, now: Date): Promise<{ token: string; expiresAt: string }> {
  const key = currentKey(model);
  if (!key) throw new Error('no signing key');
  const privateKey = await privateKeyOf(key);
  const iat = Math.floor(now.getTime() / 1000);
  const exp = iat + claims.ttlSeconds;
  const extra = claims.onBehalfOf ? { act: { sub: claims.actorId } } : {};
  const token = await new SignJWT({ tid: claims.tenantId, ...extra })
    .setProtectedHeader({ alg: TOKEN_ALG, kid: key.id, typ: 'JWT' })
    .setSubject(claims.onBehalfOf ?? claims.actorId)
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
 * Imported private keys are kept: importing a JWK costs more than signing with it. By key record, not by id,
 * like the public keys below: a record replaced under the same id is imported anew.
 */
const privateKeys = new WeakMap<SigningKeyRecord, Promise<CryptoKey | Uint8Array>>();
function privateKeyOf(key: SigningKeyRecord): Promise<CryptoKey | Uint8Array> {
  let imported = privateKeys.get(key);
  if (!imported) privateKeys.set(key, (imported = importJWK(key.privateJwk as JWK, TOKEN_ALG)));
  return imported;
}

export type TokenCheck = { ok: true; payload: JWTPayload & { sub: string; exp: number } } | { ok: false; reason: string };

/**
 * Verifies an actor JWT (one of ours: ES256, our `kid`). Done with node:crypto rather than jose: it is the
 * cost of every MQTT CONNECT, and jose's WebCrypto path measured ~290 µs per token against ~75 µs here. The
 * checks are jose's: algorithm pinned to ES256 (so `none` and HS256 are refused before any key is used),
 * strict base64url, no `crit`, a 64-byte P-256 signature, then `iss`, `aud`, `sub`, `exp`, `iat` required,
 * `exp` in the future, `nbf` and `iat` not in the future (no tolerance). A token whose signature was verified
 * before against a key the model still holds is not verified again (credentials/verified-signatures.ts); its
 * claims are.
 */
export async function verifyActorToken(model: PolicyModel, issuer: string, token: string, now: Date): Promise<TokenCheck> {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((p) => BASE64URL.test(p))) return { ok: false, reason: 'malformed token' };
  const [h, p, s] = parts as [string, string, string];
  const header = decodeJson(h);
  if (!header) return { ok: false, reason: 'malformed token' };
  if (header.alg !== TOKEN_ALG) return { ok: false, reason: 'ERR_JOSE_ALG_NOT_ALLOWED' };
  if (header.crit !== undefined || header.b64 !== undefined) return { ok: false, reason: 'ERR_JOSE_NOT_SUPPORTED' };
  const signature = Buffer.from(s, 'base64url');
  if (signature.length !== 64) return { ok: false, reason: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' };
  const candidates = typeof header.kid === 'string' ? [model.get('signingKey', header.kid)].filter((k) => k !== undefined) : [...model.all('signingKey')];
  if (candidates.length === 0) return { ok: false, reason: 'ERR_JWKS_NO_MATCHING_KEY' };
  if (!verifiedSignatures.keyOf(model, token)) {
    const signed = Buffer.from(`${h}.${p}`);
    const key = candidates.find((k) => verify('sha256', signed, { key: publicKeyOf(k), dsaEncoding: 'ieee-p1363' }, signature));
    if (!key) return { ok: false, reason: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' };
    verifiedSignatures.remember(token, key);
  }
  const payload = decodeJson(p);
  if (!payload) return { ok: false, reason: 'malformed token' };
  const t = Math.floor(now.getTime() / 1000);
  const { iss, aud, sub, exp, iat, nbf } = payload;
  if (typeof sub !== 'string' || typeof exp !== 'number' || typeof iat !== 'number') return { ok: false, reason: 'claim missing' };
  if (iss !== issuer) return { ok: false, reason: "claim 'iss' invalid" };
  if (!(aud === TOKEN_AUDIENCE || (Array.isArray(aud) && aud.includes(TOKEN_AUDIENCE)))) return { ok: false, reason: "claim 'aud' invalid" };
  if (exp <= t) return { ok: false, reason: 'token expired' };
  if (nbf !== undefined && (typeof nbf !== 'number' || nbf > t)) return { ok: false, reason: "claim 'nbf' invalid" };
  if (iat > t) return { ok: false, reason: "claim 'iat' invalid" };
  return { ok: true, payload: payload as JWTPayload & { sub: string; exp: number } };
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** One per process, like the imported keys: entries are tied to the key record of the model that verified them. */
const verifiedSignatures = new VerifiedSignatures();

function decodeJson(part: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Public keys as node:crypto key objects, by key record (a record replaced under the same id is a new key). */
const publicKeys = new WeakMap<SigningKeyRecord, KeyObject>();
function publicKeyOf(key: SigningKeyRecord): KeyObject {
  let k = publicKeys.get(key);
  if (!k) publicKeys.set(key, (k = createPublicKey({ key: key.publicJwk as JsonWebKey, format: 'jwk' })));
  return k;
}
