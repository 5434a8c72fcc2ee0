import type { RecordKind, RecordOf, StoredRecord } from '../model/records.ts';
import type { AuditEntry, PolicyStore } from '../store/policy-store.ts';
import { principalCovers, scopeOfRecord, type Principal, type RecordSource } from '../access/principal.ts';

/** How many store entries one audit read may scan for an API key before answering a short page. */
const MAX_SCANNED = 5_000;

/**
 * The audit log as a principal may read it. The root token sees every entry. An API key sees only what lies
 * in its subtree: each entry's before/after records are cut down to those whose scope the key covers, and an
 * entry with nothing left is not shown at all. So a key for one access scope learns nothing about sibling
 * scopes' actors, nor the tenant's users (their personal data lives at the tenant scope).
 *
 * A record an entry deleted may no longer be in the model; its scope is then resolved from the entry's own
 * records first (a cascade carries the scope it deleted), and anything that cannot be placed is hidden.
 */
export async function auditFor(
  store: PolicyStore,
  model: RecordSource,
  principal: Principal,
  query: { limit: number; before?: number | undefined; tenantId?: string | undefined },
): Promise<{ data: AuditEntry[]; nextBefore: number | null }> {
  if (principal.kind === 'root') {
    const entries = await store.audit({ limit: query.limit, ...(query.before ? { before: query.before } : {}), ...(query.tenantId ? { tenantId: query.tenantId } : {}) });
    const last = entries[entries.length - 1];
    return { data: entries, nextBefore: entries.length === query.limit && last ? last.seq : null };
  }
  const data: AuditEntry[] = [];
  let before = query.before;
  let scanned = 0;
  for (;;) {
    const page = await store.audit({ limit: query.limit, tenantId: principal.tenantId, ...(before ? { before } : {}) });
    for (const entry of page) {
      scanned++;
      before = entry.seq;
      const visible = visiblePart(model, principal, entry);
      if (visible) data.push(visible);
      if (data.length === query.limit) return { data, nextBefore: entry.seq };
    }
    if (page.length < query.limit) return { data, nextBefore: null };
    // Bounded work per request: a key whose subtree is quiet in a busy tenant pages on with nextBefore.
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
