import { createHash, timingSafeEqual } from 'node:crypto';
import { ScopeGateError } from '../../shared/errors.ts';
import type { Principal } from '../access/principal.ts';
import type { PolicyModel } from '../model/policy-model.ts';
import { uniqueKey } from '../model/policy-model.ts';

export function sha256(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

/**
 * Constant-time comparison of a presented secret `a` with the expected `b`: both hashed to equal length
 * first. The expected values are few and fixed (admin and broker tokens), so their digests are kept.
 */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  let hb = expectedDigests.get(b);
  if (!hb) {
    hb = createHash('sha256').update(b).digest();
    if (expectedDigests.size < 16) expectedDigests.set(b, hb);
  }
  return timingSafeEqual(ha, hb);
}
const expectedDigests = new Map<string, Buffer>();

export function bearerOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S{1,512})\s*$/i.exec(header);
  return m?.[1];
}

/** The broker-facing API: only the broker, with `Authorization: Bearer <BROKER_TOKEN>`. */
export function authenticateBroker(brokerToken: string, header: string | undefined): void {
  const token = bearerOf(header);
  if (!token || !safeEqual(token, brokerToken)) throw new ScopeGateError('UNAUTHENTICATED', 'The broker API needs Authorization: Bearer <BROKER_TOKEN>.');
}

export function authenticateAdmin(model: PolicyModel, adminToken: string, header: string | undefined): Principal {
  const token = bearerOf(header);
  if (!token) throw new ScopeGateError('UNAUTHENTICATED', 'Send Authorization: Bearer <admin token or API key>.');
  if (safeEqual(token, adminToken)) return { kind: 'root', id: 'admin' };
  if (token.startsWith('sgk_')) {
    const key = model.byUniqueKey(uniqueKey('apiKey.hash', sha256(token)));
    if (key && key.kind === 'apiKey') return { kind: 'apiKey', id: key.id, scopeId: key.scopeId, tenantId: key.tenantId, capabilities: key.capabilities ?? [] };
  }
  throw new ScopeGateError('UNAUTHENTICATED', 'The bearer token is not valid.');
}
