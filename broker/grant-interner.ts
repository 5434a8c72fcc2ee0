import type { SessionGrant } from '../shared/broker-wire.ts';
import { topicViewKey } from '../shared/topic.ts';
import { WeakValues } from './weak-values.ts';

/**
 * Sessions share the objects of equal grants. Each CONNECT's grant is parsed from its own sidecar answer, so
 * every held session had its own copy of every string, apps list, limits and dependsOn of its grant (~1.5 KiB),
 * though the sessions of one actor differ at most in their token's expiry, and the actors of one access scope
 * mostly hold the same apps and limits. Grants are read-only: sharing changes no decision.
 *
 * - An actor's grant equal to its latest one (expiry aside) is that grant, or a copy of it with its own
 *   `expiresAt` (everything else shared).
 * - Otherwise its apps and limits are those of the latest grant of the same topic view (mount and namespace)
 *   when they are equal, and so are the strings naming the tenant, project and scope.
 *
 * Only grants some session still holds are looked up (WeakValues): sharing never keeps a grant alive.
 */
export class GrantInterner {
  private readonly byActor = new WeakValues<SessionGrant>();
  private readonly byView = new WeakValues<SessionGrant>();

  intern(grant: SessionGrant): SessionGrant {
    const latest = this.byActor.get(grant.actorId);
    if (latest && sameExceptExpiry(latest, grant)) {
      if (latest.expiresAt === grant.expiresAt) return latest;
      return this.remember({ ...latest, expiresAt: grant.expiresAt });
    }
    const peer = this.byView.get(topicViewKey(grant));
    if (!peer || peer.mount !== grant.mount || peer.namespace !== grant.namespace) return this.remember(grant);
    return this.remember({
      ...grant,
      tenantId: peer.tenantId === grant.tenantId ? peer.tenantId : grant.tenantId,
      projectId: peer.projectId === grant.projectId ? peer.projectId : grant.projectId,
      accessScopeId: peer.accessScopeId === grant.accessScopeId ? peer.accessScopeId : grant.accessScopeId,
      mount: peer.mount,
      namespace: peer.namespace,
      apps: sameJson(peer.apps, grant.apps) ? peer.apps : grant.apps,
      limits: sameJson(peer.limits, grant.limits) ? peer.limits : grant.limits,
    });
  }

  private remember(grant: SessionGrant): SessionGrant {
    this.byActor.set(grant.actorId, grant);
    this.byView.set(topicViewKey(grant), grant);
    return grant;
  }
}

/** Equal in every field but `expiresAt`; the scalars first, so a grant of another revision is told apart at once. */
function sameExceptExpiry(a: SessionGrant, b: SessionGrant): boolean {
  return (
    a.revision === b.revision &&
    a.actorId === b.actorId &&
    a.subjectId === b.subjectId &&
    a.tenantId === b.tenantId &&
    a.projectId === b.projectId &&
    a.accessScopeId === b.accessScopeId &&
    a.mount === b.mount &&
    a.namespace === b.namespace &&
    a.onBehalfOf === b.onBehalfOf &&
    ('onBehalfOf' in a) === ('onBehalfOf' in b) &&
    sameJson(a.dependsOn, b.dependsOn) &&
    sameJson(a.apps, b.apps) &&
    sameJson(a.limits, b.limits)
  );
}

/** Deep equality of JSON values (what the wire schema parsed): same keys, same values, arrays in order. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k) || !sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}
