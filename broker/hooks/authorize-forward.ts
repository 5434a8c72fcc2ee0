import type { AedesPublishPacket, AuthorizeForwardHandler } from 'aedes';
import type { BrokerContext } from '../context.ts';
import { stateOf } from '../session-registry.ts';
import { decideForward } from '../session-state.ts';

/**
 * authorizeForward: a message about to be delivered (live, retained, or queued for a persistent session) is
 * shown in the subscriber's own view, or not at all when it lies outside the subscriber's namespace or app
 * grants. The packet is shared by every subscriber, so a copy carries the rewritten topic.
 */
export function authorizeForward(ctx: BrokerContext): AuthorizeForwardHandler {
  return (client, packet) => {
    const state = stateOf(client);
    if (!state) return null;
    const topic = decideForward(state, packet.topic);
    if (topic === null) return null;
    ctx.metrics.messagesOut.inc();
    const copy = { ...packet, topic } as AedesPublishPacket;
    // Aedes downgrades QoS by looking the subscription up under the delivered topic; that lookup now uses
    // the client's view, so do the downgrade here with the internal topic.
    if (packet.qos > 0) {
      const sub = (client as unknown as { subscriptions: Record<string, { qos: number } | undefined> }).subscriptions[packet.topic];
      if (sub && sub.qos < packet.qos) copy.qos = sub.qos as 0 | 1 | 2;
    }
    return copy;
  };
}
