import type { LimitName } from '../../shared/limits.ts';

/**
 * Throttled, dropped and refused-by-limit events, per tenant and limit name, counted as plain numbers on the
 * publish path and copied into Prometheus at scrape time (see metrics.ts).
 *
 * Label cardinality stays bounded: the labels are the tenant id, the event (3 values) and the limit name (a
 * fixed set of 11); never a scope, client or topic. Tenants beyond `maxTenants` distinct ids share the label
 * `_other`, so a broker serving very many tenants still exports at most maxTenants × 3 × 11 series.
 */
export type LimitEvent = 'throttled' | 'dropped' | 'refused';

export class LimitCounters {
  private readonly counts = new Map<string, Map<string, number>>();

  constructor(private readonly maxTenants = 1_000) {}

  /** The per-tenant table a session increments (looked up once per session, not per message). */
  forTenant(tenantId: string): Map<string, number> {
    let table = this.counts.get(tenantId);
    if (table) return table;
    if (this.counts.size >= this.maxTenants) return this.forTenant('_other');
    table = new Map();
    this.counts.set(tenantId, table);
    return table;
  }

  /** Every (tenant, event, limit) → count, for the scrape. */
  *entries(): Generator<[tenant: string, event: LimitEvent, limit: LimitName, count: number]> {
    for (const [tenant, table] of this.counts) {
      for (const [key, n] of table) {
        const [event, limit] = key.split(' ') as [LimitEvent, LimitName];
        yield [tenant, event, limit, n];
      }
    }
  }
}

export function countLimitEvent(table: Map<string, number>, event: LimitEvent, limit: LimitName, n = 1): void {
  const key = `${event} ${limit}`;
  table.set(key, (table.get(key) ?? 0) + n);
}
