/**
 * One zod schema per input of a service operation (create, patch, issue). The service's functions take their
 * input types from here, the HTTP routes validate request bodies with them, and the OpenAPI document and the
 * typed client are derived from them: nothing is written twice.
 */
import { z } from 'zod';
import { API_KEY_CAPABILITIES } from '../model/records.ts';
import { limitsSchema, topicConstraintSchema } from '../../shared/limits.ts';

/** No control characters anywhere in free text (names, descriptions). */
const text = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    // eslint-disable-next-line no-control-regex
    .regex(/^[^\u0000-\u001f\u007f]*$/, 'must not contain control characters');

/** A topic-safe slug: lowercase letters, digits and dashes, starting with a letter or digit. */
export const slug = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z0-9][a-z0-9-]*$/, 'must be lowercase letters, digits and dashes, starting with a letter or digit');

/** A resource id as this API issues them: `<prefix>_<chars>`. */
export const id = (prefix?: string) =>
  z
    .string()
    .min(3)
    .max(120)
    .regex(
      prefix ? new RegExp(`^${prefix}_[a-z0-9_]+$`) : /^[a-z][a-z0-9]*_[a-z0-9_]+$/,
      prefix ? `must be an id starting with '${prefix}_'` : 'must be a resource id',
    );

const externalId = z.string().min(1).max(200).regex(/^[^\u0000-\u001f\u007f]*$/).nullable();
const email = z.email().max(254);
const permissionMode = z.enum(['define', 'merge']);
const overrideState = z.enum(['enabled', 'disabled']);
const limit = z.number().int().min(0).max(1_000_000).nullable();
/** MQTT limits of a subtree (SPEC §7); `null` removes them. PATCH replaces the whole object. */
const limits = limitsSchema.nullable();
/** Action, resource type: words, or `*`. */
const word = z
  .string()
  .min(1)
  .max(64)
  .regex(/^(\*|[A-Za-z0-9][A-Za-z0-9_.:-]*)$/, 'must be `*` or a word of letters, digits, _ . : -');
const pattern = z
  .string()
  .min(1)
  .max(1024)
  .regex(/^[^\u0000-\u001f\u007f]*$/, 'must not contain control characters');

/** `sub` of a user at the trusted identity provider (e.g. a Kinde user id `kp_…`). */
const externalSubject = z.string().min(1).max(200).regex(/^[^\u0000-\u001f\u007f\s]+$/, 'no spaces or control characters');

const definitions = {
  tenantCreate: z.strictObject({
    name: text(200),
    slug: slug.optional(),
    kind: z.string().min(1).max(64).regex(/^[a-z0-9_-]+$/).default('standard'),
    planKey: z.string().min(1).max(64).nullable().optional(),
    billingEmail: email.nullable().optional(),
    maxUsers: limit.optional(),
    maxWorkspaces: limit.optional(),
    externalId: externalId.optional(),
    limits: limits.optional(),
  }),
  tenantPatch: z.strictObject({
    name: text(200).optional(),
    kind: z.string().min(1).max(64).regex(/^[a-z0-9_-]+$/).optional(),
    planKey: z.string().min(1).max(64).nullable().optional(),
    billingEmail: email.nullable().optional(),
    maxUsers: limit.optional(),
    maxWorkspaces: limit.optional(),
    externalId: externalId.optional(),
    limits: limits.optional(),
  }),
  workspaceCreate: z.strictObject({
    tenantId: id('tenant'),
    name: text(200),
    slug: slug.optional(),
    externalId: externalId.optional(),
  }),
  projectCreate: z.strictObject({
    // Implied by the workspace; when given it must be the workspace's tenant (else 422 CROSS_TENANT).
    tenantId: id('tenant').optional(),
    workspaceId: id('workspace'),
    name: text(200),
    slug: slug.optional(),
    externalId: externalId.optional(),
    limits: limits.optional(),
  }),
  environmentCreate: z.strictObject({
    // Implied by the project; when given it must be the project's tenant (else 422 CROSS_TENANT).
    tenantId: id('tenant').optional(),
    projectId: id('project'),
    name: text(200),
    slug: slug.optional(),
    externalId: externalId.optional(),
  }),
  entityPatch: z.strictObject({ name: text(200).optional(), externalId: externalId.optional() }),
  /** Projects and access scopes: like any entity, plus the limits of their subtree. */
  limitedEntityPatch: z.strictObject({ name: text(200).optional(), externalId: externalId.optional(), limits: limits.optional() }),
  scopeCreate: z.strictObject({
    parentScopeId: id('scope'),
    typeId: id('type'),
    name: text(200),
    slug: slug.optional(),
    externalId: externalId.optional(),
  }),
  scopeTypeCreate: z.strictObject({
    id: id('type'),
    name: text(200),
    config: z.strictObject({ permissionMode: permissionMode.default('merge') }).default({ permissionMode: 'merge' }),
  }),
  scopeTypePatch: z.strictObject({ name: text(200).optional() }),
  scopeTypeEdgeCreate: z.strictObject({ parentTypeId: id('type'), childTypeId: id('type') }),
  roleCreate: z.strictObject({
    scopeId: id('scope'),
    name: text(100),
    description: z.string().max(1000).regex(/^[^\u0000-\u001f\u007f]*$/).nullable().optional(),
  }),
  rolePatch: z.strictObject({
    name: text(100).optional(),
    description: z.string().max(1000).regex(/^[^\u0000-\u001f\u007f]*$/).nullable().optional(),
  }),
  permissionCreate: z.strictObject({
    scopeId: id('scope'),
    action: word,
    resourceType: word,
    resourcePattern: pattern.default('*'),
    key: z.string().min(1).max(200).regex(/^[^\u0000-\u001f\u007f\s]*$/).optional(),
    /** Topic permissions: highest QoS allowed, retain allowed or not, payload bound. */
    ...topicConstraintSchema.shape,
  }),
  rolePermissionCreate: z.strictObject({ roleId: id('role'), permissionId: id('perm') }),
  userCreate: z.strictObject({
    kindeId: z.string().min(1).max(200).regex(/^[^\u0000-\u001f\u007f]*$/),
    email,
    firstName: text(100).nullable().optional(),
    lastName: text(100).nullable().optional(),
    defaultTenantId: id('tenant').nullable().optional(),
  }),
  userPatch: z.strictObject({
    email: email.optional(),
    firstName: text(100).nullable().optional(),
    lastName: text(100).nullable().optional(),
    defaultTenantId: id('tenant').nullable().optional(),
  }),
  membershipCreate: z.strictObject({ subjectId: id(), scopeId: id('scope') }),
  roleAssignmentCreate: z.strictObject({ roleId: id('role'), membershipId: id('membership') }),
  permissionOverride: z.strictObject({ childScopeId: id('scope'), permissionId: id('perm'), state: overrideState }),
  rolePermissionOverride: z.strictObject({
    childScopeId: id('scope'),
    roleId: id('role'),
    permissionId: id('perm'),
    state: overrideState,
  }),
  apiKeyCreate: z.strictObject({
    scopeId: id('scope'),
    name: text(100),
    /** Only the root token may create a key with capabilities. */
    capabilities: z.array(z.enum(API_KEY_CAPABILITIES)).max(API_KEY_CAPABILITIES.length).default([]),
  }),
  // Seed 000
  accessScopeCreate: z.strictObject({
    slug,
    name: text(200),
    parentScopeId: id('scope').optional(),
    externalId: externalId.optional(),
    limits: limits.optional(),
  }),
  /**
   * An access scope: renamed, its subtree's limits set, or moved under another parent (`parentScopeId`: an
   * access scope of the same project, or null for the project itself), like an actor moves with accessScopeId.
   */
  accessScopePatch: z.strictObject({
    name: text(200).optional(),
    externalId: externalId.optional(),
    limits: limits.optional(),
    parentScopeId: id('scope').nullable().optional(),
  }),
  actorCreate: z.strictObject({
    name: text(200),
    kind: z.enum(['device', 'agent', 'service']).default('device'),
    accessScopeId: id('scope').nullable().optional(),
    externalSubject: externalSubject.nullable().optional(),
  }),
  actorPatch: z.strictObject({
    name: text(200).optional(),
    accessScopeId: id('scope').nullable().optional(),
    disabled: z.boolean().optional(),
    externalSubject: externalSubject.nullable().optional(),
  }),
  appCreate: z.strictObject({
    slug,
    name: text(200),
    mode: z.enum(['open', 'rbac']).default('open'),
    /** `open` apps: maxQos, retain and maxPayloadBytes for every topic of the app. */
    settings: topicConstraintSchema.nullable().optional(),
  }),
  appPatch: z.strictObject({ name: text(200).optional(), mode: z.enum(['open', 'rbac']).optional(), settings: topicConstraintSchema.nullable().optional() }),
  appActorGrant: z.strictObject({ actorId: id('actor') }),
  tokenCreate: z.strictObject({
    ttlSeconds: z.number().int().min(1).max(31_536_000).default(3600),
    /** RFC 8693 delegation: the token's `sub` is this principal and `act.sub` the agent (needs a delegation grant). */
    onBehalfOf: z.strictObject({ subjectId: z.string().min(1).max(120) }).optional(),
  }),
  delegationCreate: z.strictObject({
    /** The principal (a user's or an actor's subjectId) the agent may act for. */
    subjectId: z.string().min(1).max(120),
    /** Lifetime of the grant; capped at 30 days. */
    expiresInSeconds: z.number().int().min(1).max(2_592_000).default(86_400),
  }),
};

/**
 * Each input schema branded with its own name (type-level only; zod's brand does nothing at run time). A
 * handler typed for one input therefore accepts no other, not even one of the same shape, so pairing a
 * schema with the wrong handler in a resource definition fails to compile.
 */
type Branded<T extends Record<string, z.ZodType>> = { [K in keyof T & string]: z.core.$ZodBranded<T[K], K> };
function brandEach<T extends Record<string, z.ZodType>>(defs: T): Branded<T> {
  return defs as Branded<T>;
}

export const inputSchemas = brandEach(definitions);

export type InputSchemas = typeof inputSchemas;
export type InputName = keyof InputSchemas;
/** What a service operation receives: validated, defaults applied. */
export type Input<K extends InputName> = z.output<InputSchemas[K]>;
/** What a caller may send (defaults not yet applied): the type of request bodies in the typed client. */
export type RequestBody<K extends InputName> = z.input<InputSchemas[K]>;

/** Validates `value` as the named input, as a route does: for callers of the service outside HTTP (bench, tests). */
export function parseInput<K extends InputName>(name: K, value: RequestBody<K>): Input<K> {
  // The brand is type-level only: the schema's run-time output is exactly Input<K>.
  return (inputSchemas[name] as z.ZodType).parse(value) as Input<K>;
}
