import type { Limits, TopicConstraint } from '../../shared/limits.ts';

/**
 * The records the store keeps. Every record has a `kind`, a globally unique `id` (prefixed by kind) and the
 * `tenantId` it belongs to (`null` for global records: scope types, type edges, root's global users, signing keys).
 * The tenant (or 'global') is the record's *partition*: the unit of optimistic concurrency in the store.
 */

export type PermissionMode = 'define' | 'merge';
export type OverrideState = 'enabled' | 'disabled';
export type ActorKind = 'device' | 'agent' | 'service';
export type AppMode = 'open' | 'rbac';

interface Base {
  id: string;
  tenantId: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface ScopeTypeRecord extends Base {
  kind: 'scopeType';
  tenantId: null;
  name: string;
  config: { permissionMode: PermissionMode };
  builtIn: boolean;
}

export interface ScopeTypeEdgeRecord extends Base {
  kind: 'scopeTypeEdge';
  tenantId: null;
  parentTypeId: string;
  childTypeId: string;
  builtIn: boolean;
}

export interface ScopeRecord extends Base {
  kind: 'scope';
  tenantId: string;
  typeId: string;
  slug: string;
  name: string;
  parentId: string | null;
  externalId: string | null;
  /** The entity (tenant, workspace, project, environment) that owns this scope, if any. */
  ownerId: string | null;
  /** Limits of an access scope's subtree (tenants and projects keep theirs on their own record). */
  limits?: Limits | null;
}

export interface TenantRecord extends Base {
  kind: 'tenant';
  tenantId: string;
  scopeId: string;
  name: string;
  slug: string;
  tenantKind: string;
  planKey: string | null;
  billingEmail: string | null;
  maxUsers: number | null;
  maxWorkspaces: number | null;
  externalId: string | null;
  /** MQTT limits of the whole tenant (SPEC §7). */
  limits?: Limits | null;
}

export interface WorkspaceRecord extends Base {
  kind: 'workspace';
  tenantId: string;
  scopeId: string;
  name: string;
  slug: string;
  externalId: string | null;
}

export interface ProjectRecord extends Base {
  kind: 'project';
  tenantId: string;
  workspaceId: string | null;
  scopeId: string;
  name: string;
  slug: string;
  externalId: string | null;
  /** MQTT limits of the project's subtree (SPEC §7). */
  limits?: Limits | null;
}

export interface EnvironmentRecord extends Base {
  kind: 'environment';
  tenantId: string;
  projectId: string;
  scopeId: string;
  name: string;
  slug: string;
  externalId: string | null;
}

export interface RoleRecord extends Base {
  kind: 'role';
  tenantId: string;
  scopeId: string;
  name: string;
  description: string | null;
}

export interface PermissionRecord extends Base {
  kind: 'permission';
  tenantId: string;
  scopeId: string;
  action: string;
  resourceType: string;
  resourcePattern: string;
  key: string;
  /** Topic permissions only: highest QoS, retain allowed, payload bound (absent/null = not constrained). */
  maxQos?: 0 | 1 | 2 | null;
  retain?: boolean | null;
  maxPayloadBytes?: number | null;
}

export interface RolePermissionRecord extends Base {
  kind: 'rolePermission';
  tenantId: string;
  roleId: string;
  permissionId: string;
}

/**
 * A user belongs to one tenant (`tenantId`, set from `defaultTenantId` at creation): a person who works for two
 * tenants is two user records, one per tenant, each managed by its tenant. A user created by the root token
 * without a tenant is a global identity (`tenantId: null`) that only the root token can see or link.
 */
export interface UserRecord extends Base {
  kind: 'user';
  tenantId: string | null;
  subjectId: string;
  kindeId: string;
  email: string;
  firstName: string | null;
  lastName: string | null;
  defaultTenantId: string | null;
}

export interface ActorRecord extends Base {
  kind: 'actor';
  tenantId: string;
  subjectId: string;
  projectId: string;
  name: string;
  actorKind: ActorKind;
  accessScopeId: string | null;
  disabled: boolean;
  /** `sub` of the user this actor stands for at the trusted identity provider (MQTT login with its JWTs). */
  externalSubject?: string | null;
}

export interface AppRecord extends Base {
  kind: 'app';
  tenantId: string;
  projectId: string;
  slug: string;
  name: string;
  mode: AppMode;
  /** `open` apps: maxQos, retain and maxPayloadBytes for every topic of the app. */
  settings?: TopicConstraint | null;
}

export interface AppGrantRecord extends Base {
  kind: 'appGrant';
  tenantId: string;
  appId: string;
  actorId: string;
}

/**
 * A delegation grant: the agent actor may act on behalf of the principal subject (a user, or another actor of
 * its tenant) until `expiresAt`. Tokens issued with `onBehalfOf` need one; their permissions are the
 * intersection of the agent's and the principal's.
 */
export interface DelegationRecord extends Base {
  kind: 'delegation';
  tenantId: string;
  actorId: string;
  principalSubjectId: string;
  /** ISO time after which the grant no longer holds (capped at creation, see service/delegation.ts). */
  expiresAt: string;
  /** Who created it: `admin`, an API key id, or the principal's own subject id. */
  createdBy: string;
}

export interface MembershipRecord extends Base {
  kind: 'membership';
  tenantId: string;
  subjectId: string;
  scopeId: string;
}

export interface RoleAssignmentRecord extends Base {
  kind: 'roleAssignment';
  tenantId: string;
  roleId: string;
  membershipId: string;
}

export interface PermissionOverrideRecord extends Base {
  kind: 'permissionOverride';
  tenantId: string;
  childScopeId: string;
  permissionId: string;
  state: OverrideState;
}

export interface RolePermissionOverrideRecord extends Base {
  kind: 'rolePermissionOverride';
  tenantId: string;
  childScopeId: string;
  roleId: string;
  permissionId: string;
  state: OverrideState;
}

export interface ApiKeyRecord extends Base {
  kind: 'apiKey';
  tenantId: string;
  scopeId: string;
  name: string;
  /** sha256 of the key; keys are random 256-bit values, so a fast hash is enough. */
  hash: string;
  prefix: string;
  /**
   * Rights beyond the key's subtree that only the root token can grant (absent on keys made before they
   * existed = none).
   */
  capabilities?: ApiKeyCapability[];
}

/**
 * `tenant.plan`: may change the operator-owned fields of its tenant (plan and limits, see OPERATOR_FIELDS).
 */
export const API_KEY_CAPABILITIES = ['tenant.plan'] as const;
export type ApiKeyCapability = (typeof API_KEY_CAPABILITIES)[number];

export interface ActorSecretRecord extends Base {
  kind: 'actorSecret';
  tenantId: string;
  actorId: string;
  /** scrypt hash, `scrypt$N$r$p$salt$hash` (base64url). */
  hash: string;
  prefix: string;
}

export interface SigningKeyRecord extends Base {
  kind: 'signingKey';
  tenantId: null;
  alg: 'ES256';
  privateJwk: Record<string, unknown>;
  publicJwk: Record<string, unknown>;
}

export type StoredRecord =
  | ScopeTypeRecord
  | ScopeTypeEdgeRecord
  | ScopeRecord
  | TenantRecord
  | WorkspaceRecord
  | ProjectRecord
  | EnvironmentRecord
  | RoleRecord
  | PermissionRecord
  | RolePermissionRecord
  | UserRecord
  | ActorRecord
  | AppRecord
  | AppGrantRecord
  | DelegationRecord
  | MembershipRecord
  | RoleAssignmentRecord
  | PermissionOverrideRecord
  | RolePermissionOverrideRecord
  | ApiKeyRecord
  | ActorSecretRecord
  | SigningKeyRecord;

export type RecordKind = StoredRecord['kind'];
export type RecordOf<K extends RecordKind> = Extract<StoredRecord, { kind: K }>;

export const GLOBAL_PARTITION = 'global';

export function partitionOf(record: { tenantId: string | null }): string {
  return record.tenantId ?? GLOBAL_PARTITION;
}

/** Id prefixes, one per kind; ids are `<prefix>_<suffix>`. */
export const ID_PREFIX: Record<RecordKind, string> = {
  scopeType: 'type',
  scopeTypeEdge: 'sth',
  scope: 'scope',
  tenant: 'tenant',
  workspace: 'workspace',
  project: 'project',
  environment: 'env',
  role: 'role',
  permission: 'perm',
  rolePermission: 'rp',
  user: 'user',
  actor: 'actor',
  app: 'app',
  appGrant: 'grant',
  delegation: 'dlg',
  membership: 'membership',
  roleAssignment: 'ra',
  permissionOverride: 'po',
  rolePermissionOverride: 'rpo',
  apiKey: 'key',
  actorSecret: 'secret',
  signingKey: 'kid',
};
