/**
 * A token whose signature was verified once is not verified again while its key stands
 * (authz-sidecar/credentials/verified-signatures.ts): its claims still are, a changed token is verified anew, and
 * a key replaced under the same id makes every token it vouched for be checked against the new key.
 */
import { describe, expect, it } from 'vitest';
import { newSigningKey, signActorToken, verifyActorToken } from '../authz-sidecar/credentials/signing-keys.ts';
import { VerifiedSignatures } from '../authz-sidecar/credentials/verified-signatures.ts';
import { PolicyModel } from '../authz-sidecar/model/policy-model.ts';
import type { SigningKeyRecord } from '../authz-sidecar/model/records.ts';

const ISSUER = 'scopegate-test';

function modelWith(...keys: SigningKeyRecord[]): PolicyModel {
  const model = new PolicyModel();
  model.load({ seq: 1, records: keys, partitions: {} });
  return model;
}

describe('verified token signatures', () => {
  it('answer a known token again, but still check its claims and any change to it', async () => {
    const now = new Date();
    const model = modelWith(await newSigningKey(now.toISOString()));
    const { token } = await signActorToken(model, ISSUER, { actorId: 'act_a', tenantId: 'ten_a', ttlSeconds: 60 }, now);
    expect((await verifyActorToken(model, ISSUER, token, now)).ok).toBe(true);
    expect((await verifyActorToken(model, ISSUER, token, now)).ok).toBe(true);
    // Claims are checked on every use: the remembered signature does not keep an expired token alive.
    expect(await verifyActorToken(model, ISSUER, token, new Date(now.getTime() + 61_000))).toEqual({ ok: false, reason: 'token expired' });
    expect(await verifyActorToken(model, 'another-issuer', token, now)).toEqual({ ok: false, reason: "claim 'iss' invalid" });
    // A different payload under the same signature is verified, and refused.
    const [h, p, s] = token.split('.') as [string, string, string];
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...payload, sub: 'act_b' })).toString('base64url')}.${s}`;
    expect(await verifyActorToken(model, ISSUER, forged, now)).toEqual({ ok: false, reason: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
  });

  it('forget what a key vouched for once the key record is replaced under the same id', async () => {
    const now = new Date();
    const original = await newSigningKey(now.toISOString());
    const model = modelWith(original);
    const { token } = await signActorToken(model, ISSUER, { actorId: 'act_a', tenantId: 'ten_a', ttlSeconds: 60 }, now);
    expect((await verifyActorToken(model, ISSUER, token, now)).ok).toBe(true);
    // Another key pair under the same id (and kid): the token was never signed by it.
    const other = await newSigningKey(now.toISOString());
    const replaced: SigningKeyRecord = { ...other, id: original.id, publicJwk: { ...(other.publicJwk as object), kid: original.id } };
    model.load({ seq: 2, records: [replaced], partitions: {} });
    expect(await verifyActorToken(model, ISSUER, token, now)).toEqual({ ok: false, reason: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
  });

  it('hold at most their bound, dropping the oldest first', async () => {
    const key = await newSigningKey(new Date().toISOString());
    const model = modelWith(key);
    const cache = new VerifiedSignatures(2);
    cache.remember('token-1', key);
    cache.remember('token-2', key);
    cache.remember('token-3', key);
    expect(cache.size).toBe(2);
    expect(cache.keyOf(model, 'token-1')).toBeUndefined();
    expect(cache.keyOf(model, 'token-3')).toBe(key);
    // A key the model does not hold (any more) vouches for nothing.
    expect(cache.keyOf(modelWith(), 'token-3')).toBeUndefined();
  });
});
