import type { ActorKind, ActorRecord, AppRecord, ScopeRecord, StoredRecord, TenantRecord } from '../model/records.ts';

type Hidden = 'kind' | 'hash' | 'privateJwk';

/** The API's view of a record type: what present() returns for it (documented in http/responses.ts). */
export type Presented<R extends StoredRecord> = R extends TenantRecord
  ? Omit<R, Hidden | 'tenantKind'> & { kind: string }
  : R extends ActorRecord
    ? Omit<R, Hidden | 'actorKind'> & { kind: ActorKind; actorId: string }
    : R extends ScopeRecord
      ? Omit<R, Hidden> & { accessScopeId?: string }
      : R extends AppRecord
        ? Omit<R, Hidden> & { appId: string }
        : Omit<R, Hidden>;

/**
 * How a stored record looks in an API response: internal fields dropped, secrets never included, and the
 * id aliases seed 000 uses (`actorId`, `accessScopeId`, `appId`).
 */
export function present(r: StoredRecord): Record<string, unknown> {
  const { kind: _kind, ...rest } = r as StoredRecord & Record<string, unknown>;
  const out: Record<string, unknown> = { ...rest };
  delete out.hash;
  delete out.privateJwk;
  switch (r.kind) {
    case 'tenant':
      delete out.tenantKind;
      out.kind = r.tenantKind;
      break;
    case 'actor':
      delete out.actorKind;
      out.kind = r.actorKind;
      out.actorId = r.id;
      break;
    case 'scope':
      if (r.typeId === 'type_access') out.accessScopeId = r.id;
      break;
    case 'app':
      out.appId = r.id;
      break;
    default:
      break;
  }
  return out;
}
