import type { SessionGrant } from '../../shared/broker-wire.ts';
import type { EffectiveLimits } from '../../shared/limits.ts';

/** Session limits none of which is set. */
export const NO_SESSION_LIMITS: EffectiveLimits['session'] = { maxSubscriptionsPerSession: null, maxPayloadBytes: null, maxQueuedMessages: null, messagesPerSecond: null, bytesPerSecond: null };

/**
 * A session grant of an actor of the `fleet` access scope holding the open app `fleet`, as the broker gets it
 * from the sidecar (broker-side unit tests); `over` replaces any field.
 */
export function fleetGrant(actor: string, over: Partial<SessionGrant> = {}): SessionGrant {
  return {
    actorId: actor,
    subjectId: `subject_${actor}`,
    tenantId: 'tenant_1',
    projectId: 'project_1',
    accessScopeId: 'scope_fleet',
    mount: '$sg/project_1',
    namespace: 'fleet',
    apps: [{ appId: 'app_1', slug: 'fleet', mode: 'open', publish: ['fleet/#'], subscribe: ['fleet/#'] }],
    expiresAt: null,
    revision: 1,
    dependsOn: [`actor:${actor}`],
    limits: { session: NO_SESSION_LIMITS, subtrees: [] },
    ...over,
  };
}
