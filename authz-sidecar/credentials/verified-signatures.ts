import { createHash } from 'node:crypto';
import type { PolicyModel } from '../model/policy-model.ts';
import type { SigningKeyRecord } from '../model/records.ts';

/**
 * Token signatures already verified, by a SHA-256 digest of the whole token. A device that reconnects with the
 * token it used before (a broker restart or a network blip reconnects a whole fleet at once) then costs a hash
 * instead of an ES256 verification, which was the largest single cost of a CONNECT on the sidecar (~60 µs of
 * CPU alone, a third of the sidecar's profile under a reconnect storm).
 *
 * Sound because checking a signature is a pure function of the token and the public key: an entry names the
 * key record the token verified against, and counts only while the model still holds that very record (a key
 * removed, or replaced by a write, is a miss and the token is verified again). Only the signature is
 * remembered: the caller checks the claims (exp, nbf, iat, iss, aud) and the actor on every CONNECT.
 * Bounded: past `max` entries the oldest go first.
 */
export class VerifiedSignatures {
  private readonly byDigest = new Map<string, SigningKeyRecord>();

  constructor(private readonly max = 100_000) {}

  /** The key this exact token was verified against, if the model still holds that key record. */
  keyOf(model: PolicyModel, token: string): SigningKeyRecord | undefined {
    const digest = digestOf(token);
    const key = this.byDigest.get(digest);
    if (key === undefined) return undefined;
    if (model.get('signingKey', key.id) === key) return key;
    this.byDigest.delete(digest);
    return undefined;
  }

  /** Remembers that `token`'s signature verified against `key`. */
  remember(token: string, key: SigningKeyRecord): void {
    const digest = digestOf(token);
    if (this.byDigest.size >= this.max && !this.byDigest.has(digest)) {
      // Maps iterate in insertion order: the first key is the oldest entry.
      const oldest = this.byDigest.keys().next().value;
      if (oldest !== undefined) this.byDigest.delete(oldest);
    }
    this.byDigest.set(digest, key);
  }

  get size(): number {
    return this.byDigest.size;
  }
}

function digestOf(token: string): string {
  return createHash('sha256').update(token).digest('base64');
}
