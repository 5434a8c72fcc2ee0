import type { AuthorizeForwardHandler } from 'aedes';
import { rememberStoredTopic, subscriptionQos } from '../aedes-internals.ts';
import type { BrokerContext } from '../context.ts';
import type { SlowConsumers } from '../slow-consumers.ts';
import { stateOf } from '../session-registry.ts';
import { deliveredInternalTopic } from '../shared-subscriptions.ts';
import { decideForward } from '../session-state.ts';

/**
 * authorizeForward: a message about to be delivered (live, retained, or queued for a persistent session) is
 * shown in the subscriber's own view, or not at all when it lies outside the subscriber's namespace or app
 * grants.
 *
 * The topic is rewritten in place: Aedes hands every subscriber its own packet object (a new Packet per
 * subscription delivery, per retained message and per queued message), and its offline-queue path writes the
 * very object it passed here, ignoring the return value.
 *
 * What is stored never carries a subscriber's view (see keepStoredTopicsInternal), so every topic arriving
 * here is internal, and the client's view is always derived from it. A topic that is not internal (it does
 * not start with `$`, as every internal topic does and no client topic may) is never delivered.
 */
export function authorizeForward(ctx: BrokerContext, slow: SlowConsumers): AuthorizeForwardHandler {
  const hot = ctx.metrics.hot;
  return (client, packet) => {
    const state = stateOf(client);
    if (!state) return null;
    const internal = packet.topic;
    if (internal.charCodeAt(0) !== 36 /* $ */) return null;
    // A message a shared subscription group chose this member for (its QoS already fits the member's).
    const viaGroup = internal.charCodeAt(3) === 115 /* the s of $sgshare (internal topics are $sg/...) */ ? deliveredInternalTopic(internal) : null;
    const topic = decideForward(state, viaGroup ?? internal);
    if (topic === null) return null;
    // A client that does not read what it is sent is bounded by its own buffer (slow-consumers.ts).
    if (slow.full(client) && !slow.overflow(client, packet.qos)) return null;
    hot.messagesOut++;
    rememberStoredTopic(client, packet);
    packet.topic = topic;
    if (viaGroup !== null) return packet;
    // Aedes downgrades QoS by looking the subscription up under the delivered topic; that lookup now uses
    // the client's view, so do the downgrade here with the internal topic.
    if (packet.qos > 0) {
      const qos = subscriptionQos(client, internal);
      if (qos !== undefined && qos < packet.qos) packet.qos = qos as 0 | 1 | 2;
    }
    return packet;
  };
}
