import type { AuthorizeSubscribeHandler } from 'aedes';
import { removeStoredSubscriptions } from '../aedes-internals.ts';
import type { BrokerContext } from '../context.ts';
import { stateOf } from '../session-registry.ts';
import { isMemberFilter, memberStillAllowed } from '../shared-subscriptions.ts';
import { REFUSED_FILTER, subscriptionStillAllowed } from '../session-state.ts';

/**
 * authorizeSubscribe: every filter reaching it is already internal (rewritten by rewrite-subscriptions.ts)
 * or restored from a persistent session (stored internal), so it is checked, never rewritten again — that
 * is what keeps a restored session from being prefixed twice. Answers null (SUBACK 0x80) for refused
 * placeholders and for filters the current grant no longer allows; the latter are also removed from the
 * persistent session so they are not restored again.
 */
export function authorizeSubscribe(ctx: BrokerContext): AuthorizeSubscribeHandler {
  return (client, sub, callback) => {
    const state = stateOf(client);
    if (!state || sub.topic.startsWith(REFUSED_FILTER)) return callback(null, null);
    const shared = isMemberFilter(sub.topic);
    if (shared ? memberStillAllowed(state, client.id, sub.topic) : subscriptionStillAllowed(state, sub.topic)) {
      // A group member joins here, for a new SUBSCRIBE and for a restored persistent session alike.
      if (shared) ctx.shared?.join(client, state, sub.topic, sub.qos);
      ctx.metrics.decisions.labels('subscribe', 'allowed', 'ok').inc();
      ctx.logger.debug({ clientId: client.id, actorId: state.grant.actorId, scopeId: state.grant.accessScopeId, filter: sub.topic }, 'subscribe allowed');
      return callback(null, sub);
    }
    ctx.metrics.decisions.labels('subscribe', 'denied', 'no_longer_allowed').inc();
    ctx.logger.info({ clientId: client.id, actorId: state.grant.actorId, filter: sub.topic.slice(0, 200) }, 'restored subscription no longer allowed');
    removeStoredSubscriptions(client, [sub.topic]);
    callback(null, null);
  };
}
