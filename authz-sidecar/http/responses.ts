import { z } from 'zod';
import { limitsSchema, topicConstraintSchema } from '../../shared/limits.ts';
import type { RecordKind, StoredRecord } from '../model/records.ts';
import { API_KEY_CAPABILITIES } from '../model/records.ts';
import type { Presented } from './present.ts';

/**
 * What the API answers, as zod schemas: the OpenAPI document's success responses are generated from them,
 * a test validates real answers against them, and `presentedSchemas` is checked by tsc against what
 * `present()` makes of each record type (see the assertion at the end), so the documented shape of a record
 * cannot drift from the stored one without the build failing.
 */

const id = z.string().describe('id, prefixed by kind (`tenant_…`, `scope_…`)');
const time = z.string().describe('ISO 8601 time');
const revision = z.number().int().describe("the store revision (seq) of the write, or that this replica has applied");
const base = { id, tenantId: z.string().nullable(), createdAt: time, updatedAt: time };
const ownLimits = limitsSchema.nullable().optional();

/** Every record kind as the API shows it (present(): `kind` dropped or renamed, secrets never shown). */
export const presentedSchemas = {
  scopeType: z.object({ ...base, tenantId: z.null(), name: z.string(), config: z.object({ permissionMode: z.enum(['define', 'merge']) }), builtIn: z.boolean() }),
  scopeTypeEdge: z.object({ ...base, tenantId: z.null(), parentTypeId: z.string(), childTypeId: z.string(), builtIn: z.boolean() }),
  scope: z.object({
    ...base,
    tenantId: z.string(),
    typeId: z.string(),
    slug: z.string(),
    name: z.string(),
    parentId: z.string().nullable(),
    externalId: z.string().nullable(),
    ownerId: z.string().nullable(),
    limits: ownLimits,
    accessScopeId: z.string().optional().describe('the scope id again, for access scopes (seed 000)'),
  }),
  tenant: z.object({
    ...base,
    tenantId: z.string(),
    scopeId: z.string(),
    name: z.string(),
    slug: z.string(),
    kind: z.string().describe('the tenant kind (e.g. standard)'),
    planKey: z.string().nullable(),
    billingEmail: z.string().nullable(),
    maxUsers: z.number().int().nullable(),
    maxWorkspaces: z.number().int().nullable(),
    externalId: z.string().nullable(),
    limits: ownLimits,
  }),
  workspace: z.object({ ...base, tenantId: z.string(), scopeId: z.string(), name: z.string(), slug: z.string(), externalId: z.string().nullable() }),
  project: z.object({ ...base, tenantId: z.string(), workspaceId: z.string().nullable(), scopeId: z.string(), name: z.string(), slug: z.string(), externalId: z.string().nullable(), limits: ownLimits }),
  environment: z.object({ ...base, tenantId: z.string(), projectId: z.string(), scopeId: z.string(), name: z.string(), slug: z.string(), externalId: z.string().nullable() }),
  role: z.object({ ...base, tenantId: z.string(), scopeId: z.string(), name: z.string(), description: z.string().nullable() }),
  permission: z.object({
    ...base,
    tenantId: z.string(),
    scopeId: z.string(),
    action: z.string(),
    resourceType: z.string(),
    resourcePattern: z.string(),
    key: z.string(),
    maxQos: z.union([z.literal(0), z.literal(1), z.literal(2)]).nullable().optional(),
    retain: z.boolean().nullable().optional(),
    maxPayloadBytes: z.number().int().nullable().optional(),
  }),
  rolePermission: z.object({ ...base, tenantId: z.string(), roleId: z.string(), permissionId: z.string() }),
  user: z.object({
    ...base,
    tenantId: z.string().nullable(),
    subjectId: z.string(),
    kindeId: z.string(),
    email: z.string(),
    firstName: z.string().nullable(),
    lastName: z.string().nullable(),
    defaultTenantId: z.string().nullable(),
  }),
  actor: z.object({
    ...base,
    tenantId: z.string(),
    subjectId: z.string(),
    projectId: z.string(),
    name: z.string(),
    kind: z.enum(['device', 'agent', 'service']),
    actorId: z.string(),
    accessScopeId: z.string().nullable(),
    disabled: z.boolean(),
    externalSubject: z.string().nullable().optional(),
  }),
  app: z.object({ ...base, tenantId: z.string(), projectId: z.string(), slug: z.string(), name: z.string(), mode: z.enum(['open', 'rbac']), appId: z.string(), settings: topicConstraintSchema.nullable().optional() }),
  appGrant: z.object({ ...base, tenantId: z.string(), appId: z.string(), actorId: z.string() }),
  delegation: z.object({ ...base, tenantId: z.string(), actorId: z.string(), principalSubjectId: z.string(), expiresAt: time, createdBy: z.string() }),
  membership: z.object({ ...base, tenantId: z.string(), subjectId: z.string(), scopeId: z.string() }),
  roleAssignment: z.object({ ...base, tenantId: z.string(), roleId: z.string(), membershipId: z.string() }),
  permissionOverride: z.object({ ...base, tenantId: z.string(), childScopeId: z.string(), permissionId: z.string(), state: z.enum(['enabled', 'disabled']) }),
  rolePermissionOverride: z.object({ ...base, tenantId: z.string(), childScopeId: z.string(), roleId: z.string(), permissionId: z.string(), state: z.enum(['enabled', 'disabled']) }),
  apiKey: z.object({ ...base, tenantId: z.string(), scopeId: z.string(), name: z.string(), prefix: z.string(), capabilities: z.array(z.enum(API_KEY_CAPABILITIES)).optional().describe('rights only the root token grants') }),
  actorSecret: z.object({ ...base, tenantId: z.string(), actorId: z.string(), prefix: z.string() }),
  signingKey: z.object({ ...base, tenantId: z.null(), alg: z.literal('ES256'), publicJwk: z.record(z.string(), z.unknown()) }),
} satisfies { [K in RecordKind]: z.ZodObject };

export type PresentedKind = keyof typeof presentedSchemas;

/** One record with the revision it was read or written at (create, read, patch). */
export const oneOf = (kind: PresentedKind) => presentedSchemas[kind].extend({ revision });
/** A page of records (generic lists; `nextCursor` is the id to pass as `cursor` for the next page). */
export const pageOf = (kind: PresentedKind) => z.object({ data: z.array(presentedSchemas[kind]), nextCursor: z.string().nullable(), revision });
/** All records of a list in one answer (the lists inside one project). */
export const listOf = (kind: PresentedKind) => z.object({ data: z.array(presentedSchemas[kind]), revision });
/** Records created by one all-or-nothing batch. */
export const batchOf = (kind: PresentedKind) => z.object({ data: z.array(presentedSchemas[kind]), revision });
/** What a delete removed (with `?cascade=true`, its dependents too). */
export const deletedResponse = z.object({
  deleted: z.array(z.object({ kind: z.string(), id: z.string() })),
  dryRun: z.literal(true).optional().describe('?dryRun=true: what would be deleted; nothing was'),
  revision,
});

export const revisionResponse = z.object({ revision });
export const health = z.object({ status: z.string() });
export const readiness = z.object({ status: z.string(), revision: z.number().int().optional() });
export const metricsText = z.string().describe('Prometheus text exposition format');
export const openApiDocument = z.looseObject({ openapi: z.string(), info: z.looseObject({}), paths: z.looseObject({}) });
export const jwks = z.object({ keys: z.array(z.looseObject({ kid: z.string(), kty: z.string(), alg: z.string().optional() })) });

export const tokenIssued = z.object({
  actorId: z.string(),
  token: z.string().describe('the JWT: the MQTT password'),
  tokenType: z.literal('Bearer'),
  expiresAt: time,
  mqtt: z.object({ username: z.string(), password: z.string() }),
});
export const secretIssued = presentedSchemas.actorSecret.extend({ secretId: z.string(), secret: z.string().describe('shown once'), mqtt: z.object({ username: z.string(), password: z.string() }), revision });
export const apiKeyIssued = presentedSchemas.apiKey.extend({ key: z.string().describe('shown once'), revision });

export const auditPage = z.object({
  data: z.array(
    z.looseObject({
      seq: z.number().int(),
      principal: z.string(),
      action: z.string(),
      at: time,
      requestId: z.string().optional(),
      tenantIds: z.array(z.string()),
      before: z.array(z.unknown()),
      after: z.array(z.unknown()),
    }),
  ),
  nextBefore: z.number().int().nullable().describe('pass as `before` for older entries'),
});

/** An evaluate answer (SPEC §3): the decision, the grant that decided or the reason, and with ?explain the trace. */
export const decision = z.looseObject({
  decision: z.enum(['ALLOWED', 'DENIED']),
  reason: z.string().optional(),
  grant: z.record(z.string(), z.unknown()).optional(),
  path: z.array(z.string()).optional(),
  trace: z.array(z.record(z.string(), z.unknown())).optional(),
  revision: z.number().int(),
});
export const decisionBatch = z.looseObject({ results: z.array(z.union([decision, z.looseObject({ error: z.looseObject({ code: z.string(), message: z.string() }) })])), revision: z.number().int().optional() });

export const scopeLimits = z.looseObject({ scopeId: z.string(), own: z.unknown(), effective: z.looseObject({}), revision });

export const mqttExplain = z.looseObject({ decision: z.enum(['ALLOWED', 'DENIED']), steps: z.array(z.looseObject({})).optional() });

export const session = z.looseObject({ sessionId: z.string(), brokerId: z.string(), actorId: z.string(), tenantId: z.string() });
export const sessionPage = z.object({ data: z.array(session), total: z.number().int() });
export const disconnectRequested = z.object({ sessionId: z.string(), brokerId: z.string(), status: z.literal('disconnect_requested') });

export const whoami = z.object({ kind: z.enum(['root', 'apiKey']), id: z.string(), scopeId: z.string().optional(), tenantId: z.string().optional(), scopeName: z.string().nullable().optional() });
export const staticFile = z.string().describe('a file of the console, served as it is');

/** AuthZEN Authorization API 1.0 (§ Access Evaluation API): a boolean decision, optionally with context. */
export const authzenDecision = z.object({ decision: z.boolean(), context: z.record(z.string(), z.unknown()).optional() });
export const authzenDecisions = z.object({ evaluations: z.array(authzenDecision) });
export const authzenConfiguration = z.looseObject({ policy_decision_point: z.string(), access_evaluation_endpoint: z.string(), access_evaluations_endpoint: z.string() });

/** The broker API's answers (BROKER_TOKEN): decisions and grants, as the broker reads them. */
export const brokerAnswer = z.looseObject({}).describe('see shared/broker-wire.ts');
export const eventStream = z.string().describe('text/event-stream: one `data:` line of JSON per change');

// What present() makes of every record type must be accepted by the documented schema of its kind: a field
// added to a record, or a changed type, fails this line until the schema says the same.
type Accepts<S extends z.ZodType, T> = T extends z.input<S> ? true : false;
type AllAccepted = { [K in RecordKind]: Accepts<(typeof presentedSchemas)[K], Presented<Extract<StoredRecord, { kind: K }>>> };
type MustAllBeTrue<T extends { [K in RecordKind]: true }> = T;
export type PresentedSchemasAcceptRecords = MustAllBeTrue<AllAccepted>;
