import { ScopeGateError } from '../../shared/errors.ts';
import type { Principal } from '../access/principal.ts';

/**
 * Admin-API rate limits per API key and per tenant (all of a tenant's keys together): token buckets of
 * *work units*, refilled continuously. A request costs 1 unit, an evaluate batch 1 per decision, and a
 * decision with `explain` EXPLAIN_COST, so one caller cannot buy a lot of the shared sidecar's CPU with few
 * requests. The root token (the operator) is not limited. Limits hold per sidecar process.
 */
export interface AdminRateLimits {
  /** Units per second per API key; 0 = unlimited. */
  perKey: number;
  /** Units per second per tenant, over all its keys; 0 = unlimited. */
  perTenant: number;
  /** Bucket size as seconds of rate (the burst a quiet caller may spend at once). */
  burstSeconds?: number;
  clock?: () => number;
}

export const DEFAULT_ADMIN_RATE_LIMITS: AdminRateLimits = { perKey: 1_000, perTenant: 2_000, burstSeconds: 2 };

/** What one decision with `?explain=true` costs: its trace is the expensive part of the answer. */
export const EXPLAIN_COST = 10;

interface Bucket {
  tokens: number;
  at: number;
}

export class AdminRateLimiter {
  private readonly keys = new Map<string, Bucket>();
  private readonly tenants = new Map<string, Bucket>();
  private readonly clock: () => number;
  private readonly burst: number;

  constructor(private readonly limits: AdminRateLimits = DEFAULT_ADMIN_RATE_LIMITS) {
    this.clock = limits.clock ?? (() => performance.now());
    this.burst = limits.burstSeconds ?? 2;
  }

  /**
   * Takes `units` from the key's and the tenant's buckets, or takes nothing and throws 429 RATE_LIMITED with
   * the seconds until they would be there (Retry-After).
   */
  charge(principal: Principal, units: number): void {
    if (principal.kind === 'root' || units <= 0) return;
    const now = this.clock();
    const key = this.limits.perKey > 0 ? this.bucket(this.keys, principal.id, this.limits.perKey, now) : null;
    const tenant = this.limits.perTenant > 0 ? this.bucket(this.tenants, principal.tenantId, this.limits.perTenant, now) : null;
    const waitKey = key ? waitMs(key, units, this.limits.perKey, this.burst) : 0;
    const waitTenant = tenant ? waitMs(tenant, units, this.limits.perTenant, this.burst) : 0;
    const wait = Math.max(waitKey, waitTenant);
    if (wait === Infinity) {
      throw new ScopeGateError('RATE_LIMITED', `This request costs ${units} units, more than this ${waitKey === Infinity ? 'API key' : 'tenant'} may spend at once; split it.`, [
        { message: 'request larger than the rate limit allows at once', limit: waitKey === Infinity ? 'apiKey' : 'tenant', units, retryAfterSeconds: 60 },
      ]);
    }
    if (wait > 0) {
      const retryAfterSeconds = Math.max(1, Math.ceil(wait / 1000));
      throw new ScopeGateError('RATE_LIMITED', `Too many admin requests for this ${waitKey >= waitTenant ? 'API key' : 'tenant'}; retry in ${retryAfterSeconds} s.`, [
        { message: 'rate limited', limit: waitKey >= waitTenant ? 'apiKey' : 'tenant', retryAfterSeconds },
      ]);
    }
    if (key) key.tokens -= units;
    if (tenant) tenant.tokens -= units;
  }

  private bucket(map: Map<string, Bucket>, id: string, rate: number, now: number): Bucket {
    const capacity = rate * this.burst;
    let b = map.get(id);
    if (!b) {
      b = { tokens: capacity, at: now };
      map.set(id, b);
      // Bounded by the number of keys and tenants; forget full buckets when it grows anyway.
      if (map.size > 100_000) for (const [k, v] of map) if (v.tokens >= capacity) map.delete(k);
    }
    b.tokens = Math.min(capacity, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    return b;
  }
}

/** Milliseconds until `units` are in the bucket; Infinity when more than it can ever hold. */
function waitMs(b: Bucket, units: number, rate: number, burst: number): number {
  if (b.tokens >= units) return 0;
  if (units > rate * burst) return Infinity;
  return ((units - b.tokens) / rate) * 1000;
}

/** The Retry-After header value (seconds) of a RATE_LIMITED error, if it is one. */
export function retryAfterOf(error: ScopeGateError): string | undefined {
  if (error.code !== 'RATE_LIMITED') return undefined;
  const s = error.details.find((d) => typeof d.retryAfterSeconds === 'number')?.retryAfterSeconds;
  return typeof s === 'number' ? String(s) : '1';
}
