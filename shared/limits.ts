/**
 * Limits on the scope tree (SPEC §7): the one zod schema of the `limits` object that tenants, projects and
 * access scopes carry, and the *effective* limits a session grant hands the broker.
 *
 * A limit set at a scope bounds its whole subtree, and a child can only narrow what its ancestors allow: per
 * session limits are the minimum along the path from the actor's scope up to its tenant; per subtree limits
 * (sessions, shared publish rate, retained messages) are kept per scope that sets them, since each bounds its
 * own subtree (a tenant's 100 sessions and a project's 10 both hold).
 */
import { z } from 'zod';

const count = (max: number) => z.number().int().min(0).max(max).nullable().optional();
const positive = (max: number) => z.number().int().min(1).max(max).nullable().optional();

/** Messages per second and bytes per second; null or absent = not limited at this scope. */
export const rateSchema = z.strictObject({
  messagesPerSecond: positive(10_000_000),
  bytesPerSecond: positive(2 ** 40),
});

export const limitsSchema = z.strictObject({
  /** Sessions connected at once in the subtree, cluster-wide. */
  maxSessions: count(100_000_000),
  maxSubscriptionsPerSession: count(1_000_000),
  publishRate: z
    .strictObject({
      /** Each session's own rate: the socket is paused until the bucket refills (nothing is lost). */
      perSession: rateSchema.optional(),
      /** Shared by every session of the subtree: QoS 0 over it is dropped (counted), QoS 1/2 paced. */
      perSubtree: rateSchema.optional(),
    })
    .optional(),
  /** Size of one PUBLISH payload. */
  maxPayloadBytes: count(256 * 1024 * 1024),
  /** Messages queued for one offline persistent session. */
  maxQueuedMessages: count(100_000_000),
  /** Retained messages stored for the subtree. */
  retained: z.strictObject({ maxMessages: count(100_000_000), maxBytes: count(2 ** 40) }).optional(),
});
export type Limits = z.infer<typeof limitsSchema>;

/** Per-session limits after taking the minimum along the path; null = not limited by the tree. */
export const sessionLimitsSchema = z.object({
  maxSubscriptionsPerSession: z.number().nullable(),
  maxPayloadBytes: z.number().nullable(),
  maxQueuedMessages: z.number().nullable(),
  messagesPerSecond: z.number().nullable(),
  bytesPerSecond: z.number().nullable(),
});
export type SessionLimits = z.infer<typeof sessionLimitsSchema>;

/** A scope on the actor's path that bounds its subtree as a whole. */
export const subtreeLimitSchema = z.object({
  scopeId: z.string(),
  maxSessions: z.number().nullable(),
  messagesPerSecond: z.number().nullable(),
  bytesPerSecond: z.number().nullable(),
  retainedMessages: z.number().nullable(),
  retainedBytes: z.number().nullable(),
});
export type SubtreeLimit = z.infer<typeof subtreeLimitSchema>;

export const effectiveLimitsSchema = z.object({
  session: sessionLimitsSchema,
  /** Root (tenant) first; only scopes that set at least one subtree limit. */
  subtrees: z.array(subtreeLimitSchema),
});
export type EffectiveLimits = z.infer<typeof effectiveLimitsSchema>;

export const NO_LIMITS: EffectiveLimits = Object.freeze({
  session: Object.freeze({ maxSubscriptionsPerSession: null, maxPayloadBytes: null, maxQueuedMessages: null, messagesPerSecond: null, bytesPerSecond: null }),
  subtrees: [],
}) as EffectiveLimits;

/** The smaller of two optional bounds (null = unbounded). */
export function minBound(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a === null || a === undefined) return b ?? null;
  if (b === null || b === undefined) return a;
  return Math.min(a, b);
}

/** Names of the limits as Evaluate, logs and metrics report them. */
export type LimitName =
  | 'maxSessions'
  | 'maxSubscriptionsPerSession'
  | 'publishRate.perSession'
  | 'publishRate.perSubtree'
  | 'maxPayloadBytes'
  | 'maxPacketBytes'
  | 'maxQueuedMessages'
  | 'retained'
  | 'permission.maxQos'
  | 'permission.retain'
  | 'permission.maxPayloadBytes';

/**
 * Constraints a topic permission (`rbac` apps) or an open app's settings may carry. Absent fields do not
 * constrain: `maxQos` 2, retain allowed, no size bound beyond the tree's limits.
 */
export const topicConstraintSchema = z.strictObject({
  maxQos: z.union([z.literal(0), z.literal(1), z.literal(2)]).nullable().optional(),
  retain: z.boolean().nullable().optional(),
  maxPayloadBytes: z.number().int().min(0).max(256 * 1024 * 1024).nullable().optional(),
});
export type TopicConstraint = z.infer<typeof topicConstraintSchema>;

/** A constraint as the broker applies it: every field resolved. */
export interface ResolvedConstraint {
  maxQos: 0 | 1 | 2;
  retain: boolean;
  maxPayloadBytes: number | null;
}

export const UNCONSTRAINED: ResolvedConstraint = Object.freeze({ maxQos: 2, retain: true, maxPayloadBytes: null });

export function resolveConstraint(c: TopicConstraint | null | undefined): ResolvedConstraint {
  if (!c) return UNCONSTRAINED;
  return { maxQos: c.maxQos ?? 2, retain: c.retain ?? true, maxPayloadBytes: c.maxPayloadBytes ?? null };
}

/** Two permissions allowing the same topic: the more permissive wins, field by field (permissions add up). */
export function widerConstraint(a: ResolvedConstraint, b: ResolvedConstraint): ResolvedConstraint {
  return {
    maxQos: Math.max(a.maxQos, b.maxQos) as 0 | 1 | 2,
    retain: a.retain || b.retain,
    maxPayloadBytes: a.maxPayloadBytes === null || b.maxPayloadBytes === null ? null : Math.max(a.maxPayloadBytes, b.maxPayloadBytes),
  };
}

export function isUnconstrained(c: ResolvedConstraint): boolean {
  return c.maxQos === 2 && c.retain && c.maxPayloadBytes === null;
}

/** What a publish carries that limits and permission fields decide on. */
export interface PublishFacts {
  qos: number;
  retain: boolean;
  payloadBytes: number;
}

/** Which field of a constraint refuses a publish, or null. */
export function constraintRefuses(c: ResolvedConstraint, p: PublishFacts): 'permission.maxQos' | 'permission.retain' | 'permission.maxPayloadBytes' | null {
  if (p.qos > c.maxQos) return 'permission.maxQos';
  if (p.retain && !c.retain) return 'permission.retain';
  if (c.maxPayloadBytes !== null && p.payloadBytes > c.maxPayloadBytes) return 'permission.maxPayloadBytes';
  return null;
}
