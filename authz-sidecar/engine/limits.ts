import { minBound, type EffectiveLimits, type Limits, type SessionLimits, type SubtreeLimit } from '../../shared/limits.ts';
import type { PolicyModel } from '../model/policy-model.ts';
import type { ScopeRecord } from '../model/records.ts';

/**
 * Limits on the scope tree, resolved for one scope: pure, over the model. A tenant's and a project's limits
 * live on their own record (the entity the API patches), an access scope's on the scope record; walking the
 * scope ancestry reads each level's own limits from whichever holds them.
 */

/** The `limits` a scope itself sets (not inherited); null when none. */
export function ownLimitsOf(model: PolicyModel, scope: ScopeRecord): Limits | null {
  if (scope.ownerId) {
    const owner = model.get('tenant', scope.ownerId) ?? model.get('project', scope.ownerId);
    if (owner) return owner.limits ?? null;
  }
  return scope.limits ?? null;
}

/** One effective per-session bound and the scope that set it (explain names it). */
export interface LimitSource {
  value: number;
  scopeId: string;
}

export interface ResolvedLimits extends EffectiveLimits {
  /** Where each per-session bound comes from. */
  sources: Partial<Record<keyof SessionLimits, LimitSource>>;
}

/**
 * Effective limits at `scopeId`: per-session bounds are the minimum along the path to the tenant (a child only
 * narrows its ancestors); subtree bounds are listed per scope that sets them, root first.
 */
export function effectiveLimitsAt(model: PolicyModel, scopeId: string): ResolvedLimits {
  // Not memoized: a walk of a handful of scopes, once per CONNECT or grant refresh.
  const session: SessionLimits = { maxSubscriptionsPerSession: null, maxPayloadBytes: null, maxQueuedMessages: null, messagesPerSecond: null, bytesPerSecond: null };
  const sources: ResolvedLimits['sources'] = {};
  const subtrees: SubtreeLimit[] = [];
  const narrow = (key: keyof SessionLimits, value: number | null | undefined, at: string) => {
    if (value === null || value === undefined) return;
    const current = session[key];
    if (current !== null && current <= value) return;
    session[key] = value;
    sources[key] = { value, scopeId: at };
  };
  for (const scope of model.ancestry(scopeId)) {
    const own = ownLimitsOf(model, scope);
    if (!own) continue;
    narrow('maxSubscriptionsPerSession', own.maxSubscriptionsPerSession, scope.id);
    narrow('maxPayloadBytes', own.maxPayloadBytes, scope.id);
    narrow('maxQueuedMessages', own.maxQueuedMessages, scope.id);
    narrow('messagesPerSecond', own.publishRate?.perSession?.messagesPerSecond, scope.id);
    narrow('bytesPerSecond', own.publishRate?.perSession?.bytesPerSecond, scope.id);
    const subtree: SubtreeLimit = {
      scopeId: scope.id,
      maxSessions: own.maxSessions ?? null,
      messagesPerSecond: own.publishRate?.perSubtree?.messagesPerSecond ?? null,
      bytesPerSecond: own.publishRate?.perSubtree?.bytesPerSecond ?? null,
      retainedMessages: own.retained?.maxMessages ?? null,
      retainedBytes: own.retained?.maxBytes ?? null,
    };
    if (Object.entries(subtree).some(([k, v]) => k !== 'scopeId' && v !== null)) subtrees.push(subtree);
  }
  subtrees.reverse();
  return { session, subtrees, sources };
}

/** The effective limits a session grant carries (no sources: the broker does not need them). */
export function grantLimitsAt(model: PolicyModel, scopeId: string): EffectiveLimits {
  const { session, subtrees } = effectiveLimitsAt(model, scopeId);
  return { session, subtrees };
}

export { minBound };

/**
 * `maxSessions` of every scope on a session's path (the actor's scope up to its tenant) that sets one: what the
 * live session ledger's atomic reserve checks at CONNECT (each must stay under its max, cluster-wide).
 */
export function maxSessionsAlong(model: PolicyModel, scopePath: readonly string[]): Array<{ scopeId: string; max: number }> {
  const out: Array<{ scopeId: string; max: number }> = [];
  for (const scopeId of scopePath) {
    const scope = model.get('scope', scopeId);
    const max = scope ? ownLimitsOf(model, scope)?.maxSessions : undefined;
    if (max !== null && max !== undefined) out.push({ scopeId, max });
  }
  return out;
}
