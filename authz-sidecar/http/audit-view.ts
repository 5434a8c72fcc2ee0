import type { RecordKind, RecordOf, StoredRecord } from '../model/records.ts';
import type { AuditEntry, PolicyStore } from '../store/policy-store.ts';
import { principalCovers, scopeOfRecord, type Principal, type RecordSource } from '../access/principal.ts';

/** How many store entries one audit read may scan (for an API key, or with filters) before answering a short page. */
const MAX_SCANNED = 5_000;
/**
 * Entries are stored in commit order and `at` is the writing sidecar's clock when it built the write, so `at`
 * runs backwards at most by the clock skew between sidecars: a newest-first scan for `since` stops only once
 * it is this far past it.
 */
const CLOCK_SKEW_MS = 60_000;

/** The audit log's filters (GET /v1/audit): who, what, when. */
export interface AuditFilter {
  principal?: string | undefined;
  /** An action, or a prefix ending in '*'. */
  action?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
}

/** The entries a filter keeps, as a predicate; null when it keeps every entry. */
export function auditPredicate(filter: AuditFilter): ((entry: AuditEntry) => boolean) | null {
  const { principal, action } = filter;
  const since = filter.since === undefined ? -Infinity : Date.parse(filter.since);
  const until = filter.until === undefined ? Infinity : Date.parse(filter.until);
  if (principal === undefined && action === undefined && since === -Infinity && until === Infinity) return null;
  const prefix = action?.endsWith('*') ? action.slice(0, -1) : null;
  return (entry) => {
    if (principal !== undefined && entry.principal !== principal) return false;
    if (action !== undefined && (prefix === null ? entry.action !== action : !entry.action.startsWith(prefix))) return false;
    const at = Date.parse(entry.at);
    return at >= since && at <= until;
  };
}

/**
 * The audit log as a principal may read it, filtered by who, what and when. The root token sees every entry.
 * An API key sees only what lies in its subtree: each entry's before/after records are cut down to those whose
 * scope the key covers, and an entry with nothing left is not shown at all. So a key for one access scope
 * learns nothing about sibling scopes' actors, nor the tenant's users (their personal data lives at the tenant
 * scope).
 *
 * A record an entry deleted may no longer be in the model; its scope is then resolved from the entry's own
 * records first (a cascade carries the scope it deleted), and anything that cannot be placed is hidden.
 *
 * Filtered or cut-down reads scan the store newest first and stop after MAX_SCANNED entries: a page may then be
 * short with `nextBefore` set, to page on from where the scan stopped.
 */
export async function auditFor(
  store: PolicyStore,
  model: RecordSource,
  principal: Principal,
  query: { limit: number; before?: number | undefined; tenantId?: string | undefined } & AuditFilter,
): Promise<{ data: AuditEntry[]; nextBefore: number | null }> {
  const matches = auditPredicate(query);
  if (principal.kind === 'root' && matches === null) {
    const entries = await store.audit({ limit: query.limit, ...(query.before ? { before: query.before } : {}), ...(query.tenantId ? { tenantId: query.tenantId } : {}) });
    const last = entries[entries.length - 1];
    return { data: entries, nextBefore: entries.length === query.limit && last ? last.seq : null };
  }
  const tenantId = principal.kind === 'root' ? query.tenantId : principal.tenantId;
  const stopBefore = query.since === undefined ? -Infinity : Date.parse(query.since) - CLOCK_SKEW_MS;
  // Filters may skip many entries: read the store in larger pages than the answer.
  const pageSize = matches === null ? query.limit : Math.min(1000, Math.max(query.limit, 200));
  const data: AuditEntry[] = [];
  let before = query.before;
  let scanned = 0;
  for (;;) {
    const page = await store.audit({ limit: pageSize, ...(tenantId ? { tenantId } : {}), ...(before ? { before } : {}) });
    for (const entry of page) {
      scanned++;
      before = entry.seq;
      if (Date.parse(entry.at) < stopBefore) return { data, nextBefore: null };
      if (matches && !matches(entry)) continue;
      const visible = principal.kind === 'root' ? entry : visiblePart(model, principal, entry);
      if (visible) data.push(visible);
      if (data.length === query.limit) return { data, nextBefore: entry.seq };
    }
    if (page.length < pageSize) return { data, nextBefore: null };
    // Bounded work per request: a quiet subtree, or a rare filter, in a busy log pages on with nextBefore.
    if (scanned >= MAX_SCANNED) return { data, nextBefore: before ?? null };
  }
}

function visiblePart(model: RecordSource, principal: Principal, entry: AuditEntry): AuditEntry | null {
  const own = new Map<string, StoredRecord>();
  for (const r of [...entry.before, ...entry.after] as StoredRecord[]) if (r && typeof r.id === 'string') own.set(r.id, r);
  const src: RecordSource = {
    get<K extends RecordKind>(kind: K, id: string): RecordOf<K> | undefined {
      const r = own.get(id);
      if (r && r.kind === kind) return r as RecordOf<K>;
      return model.get(kind, id);
    },
  };
  const covered = (r: unknown) => {
    const rec = r as StoredRecord;
    return typeof rec?.kind === 'string' && principalCovers(src, principal, scopeOfRecord(src, rec));
  };
  const before = entry.before.filter(covered);
  const after = entry.after.filter(covered);
  if (before.length === 0 && after.length === 0) return null;
  return { ...entry, before, after };
}
