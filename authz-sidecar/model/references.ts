import type { RecordKind, StoredRecord } from './records.ts';

/**
 * The reference graph of the model, declared once: which field of which kind points at what. It drives the
 * reverse index (who refers to X), referential checks on delete (409 while referenced) and cascades.
 */
export interface ReferenceField {
  field: string;
  /** `soft` references are set to null by a cascade instead of deleting the referrer. */
  soft?: boolean;
  /** The referrer is owned by the target's owner and goes with it (an entity's own scope). */
  owned?: boolean;
}

export const REFERENCES: Record<RecordKind, ReferenceField[]> = {
  scopeType: [],
  scopeTypeEdge: [{ field: 'parentTypeId' }, { field: 'childTypeId' }],
  scope: [{ field: 'typeId' }, { field: 'parentId' }],
  tenant: [],
  workspace: [],
  project: [{ field: 'workspaceId' }],
  environment: [{ field: 'projectId' }],
  role: [{ field: 'scopeId' }],
  permission: [{ field: 'scopeId' }],
  rolePermission: [{ field: 'roleId' }, { field: 'permissionId' }],
  // A tenant's users go with the tenant; a global user's default tenant is only a preference.
  user: [{ field: 'tenantId' }, { field: 'defaultTenantId', soft: true }],
  actor: [{ field: 'projectId' }, { field: 'accessScopeId' }],
  app: [{ field: 'projectId' }],
  appGrant: [{ field: 'appId' }, { field: 'actorId' }],
  delegation: [{ field: 'actorId' }, { field: 'principalSubjectId' }],
  membership: [{ field: 'scopeId' }, { field: 'subjectId' }],
  roleAssignment: [{ field: 'roleId' }, { field: 'membershipId' }],
  permissionOverride: [{ field: 'childScopeId' }, { field: 'permissionId' }],
  rolePermissionOverride: [{ field: 'childScopeId' }, { field: 'roleId' }, { field: 'permissionId' }],
  apiKey: [{ field: 'scopeId' }],
  actorSecret: [{ field: 'actorId' }],
  signingKey: [],
};

/** The ids a record can be referred to by: its id, and its subjectId for users and actors. */
export function identitiesOf(record: StoredRecord): string[] {
  return record.kind === 'user' || record.kind === 'actor' ? [record.id, record.subjectId] : [record.id];
}

/** The (field, target id) pairs of a record's outgoing references that are set. */
export function referencesOf(record: StoredRecord): Array<{ field: string; target: string; soft: boolean }> {
  const out: Array<{ field: string; target: string; soft: boolean }> = [];
  const fields = record as unknown as Record<string, unknown>;
  for (const ref of REFERENCES[record.kind]) {
    const target = fields[ref.field];
    if (typeof target === 'string') out.push({ field: ref.field, target, soft: ref.soft === true });
  }
  return out;
}

/** The scope an entity owns (tenant, workspace, project, environment); it lives and dies with its owner. */
export function ownedScopeId(record: StoredRecord): string | null {
  switch (record.kind) {
    case 'tenant':
    case 'workspace':
    case 'project':
    case 'environment':
      return record.scopeId;
    default:
      return null;
  }
}
