/**
 * The wire contract between the broker and the sidecar's broker-facing decision API
 * (`/v1/broker/*`, authenticated with `Authorization: Bearer <BROKER_TOKEN>`).
 *
 * The sidecar answers a CONNECT with everything the broker needs to decide every later publish and
 * subscribe of that session in memory: the actor's topic view (mount + namespace) and, per granted app,
 * the topic filters the actor may publish to and subscribe to. The broker keeps that *session grant* in its
 * decision cache and refreshes it when the change feed says the actor's tenant changed.
 */
import { z } from 'zod';
import { effectiveLimitsSchema, type EffectiveLimits } from './limits.ts';

/** A permission field set (maxQos, retain, maxPayloadBytes) with every field resolved. */
const resolvedConstraintSchema = z.object({
  maxQos: z.union([z.literal(0), z.literal(1), z.literal(2)]),
  retain: z.boolean(),
  maxPayloadBytes: z.number().nullable(),
});

export const appGrantSchema = z.object({
  appId: z.string(),
  /** First topic level the client writes. */
  slug: z.string(),
  mode: z.enum(['open', 'rbac']),
  /**
   * Topic filters in the client's own view (`<app>/<rest>`, or `<app>/<namespace>/<rest>` for project-level
   * actors) that the actor may publish to. For `open` apps this is `['<app>/#']`.
   */
  publish: z.array(z.string()),
  /** Filters that must cover a subscription filter entirely for it to be allowed. */
  subscribe: z.array(z.string()),
  /**
   * Permission fields of the filters above that carry any (absent = unconstrained): per filter, the most
   * permissive of the permissions that contribute it. An open app's settings apply to `<app>/#`.
   */
  publishConstraints: z.record(z.string(), resolvedConstraintSchema).optional(),
  subscribeConstraints: z.record(z.string(), resolvedConstraintSchema).optional(),
});
export type AppGrant = z.infer<typeof appGrantSchema>;

export const sessionGrantSchema = z.object({
  actorId: z.string(),
  subjectId: z.string(),
  tenantId: z.string(),
  projectId: z.string(),
  accessScopeId: z.string().nullable(),
  /** Internal topic prefix of the actor's project; never visible to clients. */
  mount: z.string(),
  /** Slug path of the access scope below the project ('' for project-level actors). */
  namespace: z.string(),
  apps: z.array(appGrantSchema),
  /** Epoch ms at which the credential expires (JWT `exp`); null for secrets. */
  expiresAt: z.number().nullable(),
  /** Store revision the grant was computed at. */
  revision: z.number(),
  /**
   * The grant inputs it was computed from (`actor:<id>`, `scope:<id>`, `subject:<id>`, …): the broker re-decides
   * the session when a change names one of them, and only then.
   */
  dependsOn: z.array(z.string()),
  /** Limits of the scope tree on the actor's path (SPEC §7), so the broker decides them in memory. */
  limits: effectiveLimitsSchema,
  /** Delegated session (RFC 8693): the principal subject the actor acts for; its grant is the intersection. */
  onBehalfOf: z.string().nullable().optional(),
});
export type SessionGrant = z.infer<typeof sessionGrantSchema>;

export const connectRequestSchema = z.object({
  clientId: z.string(),
  username: z.string(),
  password: z.string(),
  remoteAddress: z.string().optional(),
  /** The broker asking (its lease in the session ledger) and the id it gave this session: with both, an
   *  allowed CONNECT also reserves the session's slot in the ledger (see authz-sidecar/ledger). */
  brokerId: z.string().min(1).max(200).optional(),
  sessionId: z.string().min(1).max(200).optional(),
});
export type ConnectRequest = z.infer<typeof connectRequestSchema>;

export const connectResponseSchema = z.discriminatedUnion('decision', [
  z.object({ decision: z.literal('allowed'), session: sessionGrantSchema }),
  z.object({
    decision: z.literal('denied'),
    /**
     * bad_credentials → CONNACK 4; not_authorized → CONNACK 5; rate_limited → CONNACK 4 after a delay;
     * session_limit (a scope on the actor's path has its `maxSessions`) → CONNACK 3, "server unavailable": a
     * quota that frees up, which clients retry, unlike 5 that tells them their authorization is wrong.
     */
    reason: z.enum(['bad_credentials', 'not_authorized', 'rate_limited', 'session_limit']),
    message: z.string(),
  }),
]);
export type ConnectResponse = z.infer<typeof connectResponseSchema>;

/**
 * Several CONNECTs in one call: a broker facing a reconnect storm sends the CONNECTs that arrived together in
 * one request instead of one HTTP round trip each. Answers are in request order.
 */
export const connectBatchRequestSchema = z.object({ requests: z.array(connectRequestSchema).min(1).max(1_000) });
/**
 * An entry of a batch answer: the decision, or — when deciding that one CONNECT failed on the sidecar — an
 * error in SPEC §3's shape, which the broker treats as "sidecar unavailable" for that client only.
 */
export const connectBatchErrorSchema = z.object({ error: z.object({ code: z.string(), message: z.string() }).loose() });
export const connectBatchResultSchema = z.union([connectResponseSchema, connectBatchErrorSchema]);
export type ConnectBatchResult = z.infer<typeof connectBatchResultSchema>;
export const connectBatchResponseSchema = z.object({ results: z.array(connectBatchResultSchema) });

/** Re-decide live sessions: one entry per actor, `null` when the actor may no longer connect at all. */
export const refreshRequestSchema = z.object({
  actorIds: z.array(z.string()).max(10_000),
  /** Delegated sessions of these actors, each re-decided with its principal (answered under `delegatedKey`). */
  delegated: z.array(z.object({ actorId: z.string(), onBehalfOf: z.string() })).max(10_000).optional(),
});
/**
 * A grant in a refresh answer: `place` (its tenant, project, access scope, mount and namespace), `apps` and
 * `limits` are indexes into the answer's tables, and `dependsOn` lists indexes into its `inputs` table. The
 * sessions of one access scope share all of these but a few inputs of their own (a change at one scope
 * re-decides all its sessions), and each distinct value is then sent, parsed and validated once: validating
 * each grant whole was ~40 % of the broker's cost, and the inputs were most of the answer's bytes.
 */
export const grantPlaceSchema = sessionGrantSchema.pick({ tenantId: true, projectId: true, accessScopeId: true, mount: true, namespace: true });
export type GrantPlace = z.infer<typeof grantPlaceSchema>;
export const packedGrantSchema = sessionGrantSchema.omit({ tenantId: true, projectId: true, accessScopeId: true, mount: true, namespace: true, apps: true, limits: true, dependsOn: true }).extend({
  // Plain numbers: `unpackRefresh` refuses any index that is not an entry of its table (negative, fractional,
  // out of range), which is the whole check; zod's integer checks per element cost more than the rest of the
  // answer's validation together.
  place: z.number(),
  apps: z.number(),
  limits: z.number(),
  dependsOn: z.array(z.number()),
});
export type PackedGrant = z.infer<typeof packedGrantSchema>;

export const refreshResponseSchema = z.object({
  revision: z.number(),
  /** Distinct places, app grant lists, limits and grant inputs of the grants below, referred to by index. */
  places: z.array(grantPlaceSchema),
  apps: z.array(z.array(appGrantSchema)),
  limits: z.array(effectiveLimitsSchema),
  inputs: z.array(z.string()),
  sessions: z.record(z.string(), packedGrantSchema.nullable()),
  delegated: z.record(z.string(), packedGrantSchema.nullable()).optional(),
});

/** Key of a delegated session in a refresh answer. */
export function delegatedKey(actorId: string, onBehalfOf: string): string {
  return `${actorId} ${onBehalfOf}`;
}
export type RefreshWire = z.infer<typeof refreshResponseSchema>;

/** A refresh answer with every grant whole again (grants of one table entry share its objects: read-only). */
export interface RefreshResponse {
  revision: number;
  sessions: Record<string, SessionGrant | null>;
  delegated?: Record<string, SessionGrant | null>;
}

/**
 * Sidecar side: the answer for `sessions` and `delegated`, each distinct apps list, limits and input sent once.
 * Lists and objects are told apart by identity first (the sidecar shares them between grants computed from
 * the same rules), by content only the first time an object is met.
 */
export function packRefresh(revision: number, sessions: Record<string, SessionGrant | null>, delegated?: Record<string, SessionGrant | null>): RefreshWire {
  const places: GrantPlace[] = [];
  const apps: AppGrant[][] = [];
  const limits: EffectiveLimits[] = [];
  const inputs: string[] = [];
  const placeIndex = new Map<string, number>();
  const appIndex = new Map<string, number>();
  const limitIndex = new Map<string, number>();
  const inputIndex = new Map<string, number>();
  const contentKeys = new WeakMap<object, string>();
  const contentKey = (value: object) => {
    let key = contentKeys.get(value);
    if (key === undefined) contentKeys.set(value, (key = JSON.stringify(value)));
    return key;
  };
  const indexOf = <T>(key: string, value: T, table: T[], index: Map<string, number>) => {
    let i = index.get(key);
    if (i === undefined) index.set(key, (i = table.push(value) - 1));
    return i;
  };
  // An apps list is known by its app grants: two lists of the same objects are the same list.
  const appsKey = (list: AppGrant[]) => list.map(contentKey).join('\u0000');
  const pack = (grants: Record<string, SessionGrant | null>) => {
    const out: Record<string, PackedGrant | null> = {};
    for (const [key, g] of Object.entries(grants)) {
      if (g === null) {
        out[key] = null;
        continue;
      }
      const placeKey = `${g.tenantId}\u0000${g.projectId}\u0000${g.accessScopeId ?? ''}\u0000${g.mount}\u0000${g.namespace}`;
      let place = placeIndex.get(placeKey);
      if (place === undefined) placeIndex.set(placeKey, (place = places.push({ tenantId: g.tenantId, projectId: g.projectId, accessScopeId: g.accessScopeId, mount: g.mount, namespace: g.namespace }) - 1));
      // Fields written out (no rest or spread): object rest and spread take V8's slow path, 10 × the cost here.
      const packed: PackedGrant = {
        actorId: g.actorId,
        subjectId: g.subjectId,
        place,
        apps: indexOf(appsKey(g.apps), g.apps, apps, appIndex),
        expiresAt: g.expiresAt,
        revision: g.revision,
        dependsOn: g.dependsOn.map((input) => indexOf(input, input, inputs, inputIndex)),
        limits: indexOf(contentKey(g.limits), g.limits, limits, limitIndex),
      };
      if (g.onBehalfOf !== undefined) packed.onBehalfOf = g.onBehalfOf;
      out[key] = packed;
    }
    return out;
  };
  const packedSessions = pack(sessions);
  const packedDelegated = delegated ? pack(delegated) : undefined;
  return { revision, places, apps, limits, inputs, sessions: packedSessions, ...(packedDelegated ? { delegated: packedDelegated } : {}) };
}

/** Broker side: the grants whole again, or null when an index points outside its table (a malformed answer). */
export function unpackRefresh(wire: RefreshWire): RefreshResponse | null {
  let bad = false;
  const unpack = (grants: Record<string, PackedGrant | null>) => {
    const out: Record<string, SessionGrant | null> = {};
    for (const [key, g] of Object.entries(grants)) {
      if (g === null) {
        out[key] = null;
        continue;
      }
      const place = wire.places[g.place];
      const apps = wire.apps[g.apps];
      const limits = wire.limits[g.limits];
      const dependsOn: string[] = [];
      for (const i of g.dependsOn) {
        const input = wire.inputs[i];
        if (input === undefined) bad = true;
        else dependsOn.push(input);
      }
      if (!place || !apps || !limits) {
        bad = true;
        continue;
      }
      const grant: SessionGrant = {
        actorId: g.actorId,
        subjectId: g.subjectId,
        tenantId: place.tenantId,
        projectId: place.projectId,
        accessScopeId: place.accessScopeId,
        mount: place.mount,
        namespace: place.namespace,
        apps,
        expiresAt: g.expiresAt,
        revision: g.revision,
        dependsOn,
        limits,
      };
      if (g.onBehalfOf !== undefined) grant.onBehalfOf = g.onBehalfOf;
      out[key] = grant;
    }
    return out;
  };
  const sessions = unpack(wire.sessions);
  const delegated = wire.delegated ? unpack(wire.delegated) : undefined;
  return bad ? null : { revision: wire.revision, sessions, ...(delegated ? { delegated } : {}) };
}

/**
 * Change feed (`GET /v1/broker/changes`, text/event-stream): one `change` event per committed store change,
 * naming the grant inputs it wrote (see SessionGrant.dependsOn; empty for a write no grant reads), and a
 * `heartbeat` event every few seconds so the broker notices a dead feed. `all: true` (after the sidecar
 * reloaded its model) means any grant may have changed.
 */
/**
 * A topic space a change emptied or moved: everything stored under `<mount>/<app>/<namespace>/…` (retained
 * messages) is removed, or moved to the same place under `movedTo`. Namespace '' is the whole mount (a
 * project deleted). See authz-sidecar/engine/topic-spaces.ts for when each is sent.
 */
export const topicSpaceChangeSchema = z.object({
  mount: z.string().min(1),
  namespace: z.string(),
  movedTo: z.string().min(1).nullable(),
});
export type TopicSpaceChange = z.infer<typeof topicSpaceChangeSchema>;

export const changeEventSchema = z.object({
  seq: z.number(),
  inputs: z.array(z.string()),
  all: z.boolean(),
  /** Topic spaces emptied or moved by the change (a scope deleted, created, renamed or moved). */
  spaces: z.array(topicSpaceChangeSchema).optional(),
  /** Actors the change deleted: the broker removes their stored sessions (subscriptions and queues). */
  deletedActors: z.array(z.string()).optional(),
  /** Actors the change disabled: the broker closes their sessions of grants older than the change at once. */
  disabledActors: z.array(z.string()).optional(),
});
export type BrokerChangeEvent = z.infer<typeof changeEventSchema>;

/**
 * What a broker reports to the session ledger (`POST /v1/broker/ledger`), in order; every call also renews the
 * broker's lease (`leaseMs`). `sync`, when present, replaces everything the ledger holds for this broker: the
 * broker sends it when the answer says the ledger forgot it (`known: false`) or holds a different number of its
 * sessions.
 */
export const ledgerEventSchema = z.discriminatedUnion('type', [
  /** The CONNACK was sent. */
  z.object({ type: z.literal('connected'), sessionId: z.string().max(200) }),
  /** The session's subscriptions now (client view). */
  z.object({ type: z.literal('subscriptions'), sessionId: z.string().max(200), subscriptions: z.array(z.string().max(65_535)).max(10_000) }),
  /** The session ended (or its CONNECT did not complete): its slot is given back. */
  z.object({ type: z.literal('ended'), sessionId: z.string().max(200) }),
]);
export type LedgerEvent = z.infer<typeof ledgerEventSchema>;

export const ledgerSessionSchema = z.object({
  sessionId: z.string().max(200),
  actorId: z.string().max(200),
  clientId: z.string().max(65_535),
  connectedAt: z.number(),
  state: z.enum(['connecting', 'connected']),
  subscriptions: z.array(z.string().max(65_535)).max(10_000),
  remoteAddress: z.string().max(200).optional(),
});
export type LedgerSession = z.infer<typeof ledgerSessionSchema>;

export const ledgerReportSchema = z.object({
  brokerId: z.string().min(1).max(200),
  leaseMs: z.number().int().min(1_000).max(600_000),
  events: z.array(ledgerEventSchema).max(100_000),
  sync: z.array(ledgerSessionSchema).max(1_000_000).optional(),
});
export type LedgerReport = z.infer<typeof ledgerReportSchema>;
export const ledgerReportResponseSchema = z.object({ known: z.boolean(), sessions: z.number() });
export type LedgerReportResponse = z.infer<typeof ledgerReportResponseSchema>;

/** Change feed event `disconnect`: an admin asked to close this session (only its broker acts on it). */
export const disconnectEventSchema = z.object({ sessionId: z.string(), brokerId: z.string() });
export type DisconnectEvent = z.infer<typeof disconnectEventSchema>;
