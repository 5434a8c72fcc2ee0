import type { AuthorizePublishHandler } from 'aedes';
import { toClient } from '../../shared/topic.ts';
import { isOwnWill, sweptWillOf } from '../aedes-internals.ts';
import type { BrokerContext } from '../context.ts';
import { stateOf } from '../session-registry.ts';
import { decidePublish, isRefusal } from '../session-state.ts';
import { constraintRefuses } from '../../shared/limits.ts';
import { countLimitEvent } from '../limits/limit-counters.ts';
import type { LimitVerdict } from '../limits/session-limits.ts';

import { DROPPED_TOPIC } from './dropped-topic.ts';
import { decideSweptWill, type Republish } from './swept-wills.ts';

export { DROPPED_TOPIC };

/**
 * authorizePublish: the client's topic is decided from the session state (a cache lookup in steady state)
 * and rewritten in place to the internal topic. A refused publish closes the connection
 * (MQTT_DENY_ACTION=disconnect) or is acknowledged and discarded (drop).
 *
 * Two other callers: the session's own will at close (already rewritten at CONNECT; re-checked against the
 * current grant), and wills of dead brokers in a cluster (see swept-wills.ts: re-decided against the owner's
 * grant of today, whether or not the owner is connected here again).
 */
export function authorizePublish(ctx: BrokerContext, republish: Republish): AuthorizePublishHandler {
  const drop = ctx.config.denyAction === 'drop';
  const hot = ctx.metrics.hot;
  return (client, packet, callback) => {
    const swept = sweptWillOf(client, packet);
    if (swept) return decideSweptWill(ctx, packet, swept, republish, callback);
    if (client === null) return callback(new Error('publish without a client'));
    const state = stateOf(client);
    if (!state) return callback(new Error('session not authorized'));
    if (isOwnWill(client, packet)) {
      const own = toClient(state.view, packet.topic);
      const again = own === null ? null : decidePublish(state, own);
      return callback(typeof again === 'string' && again === packet.topic ? null : new Error('will no longer allowed'));
    }

    const cache = state.publishDecisions;
    const hitsBefore = cache.hitCount;
    const decision = decidePublish(state, packet.topic);
    if (cache.hitCount !== hitsBefore) hot.cacheHit++;
    else hot.cacheMiss++;

    if (isRefusal(decision)) return refuse(decision.refused);
    const internalTopic: string = decision;

    // Permission fields (rbac topic permissions, open-app settings), then the scope tree's limits.
    const payloadBytes = packet.payload.length;
    if (state.publishConstraints !== null) {
      const field = constraintRefuses(state.publishConstraints.decide(packet.topic), { qos: packet.qos, retain: packet.retain, payloadBytes });
      if (field !== null) {
        if (state.limits) countLimitEvent(state.limits.counters, 'refused', field);
        return refuse(field);
      }
    }
    if (state.limits === null) return pass(internalTopic);
    const verdict = ctx.limits.decide(state.limits, decision, packet.qos, packet.retain, payloadBytes);
    // A retained publish in Redis mode is admitted by Redis (the cluster-wide retained quota); if Redis cannot
    // answer, the publish fails like any other that cannot be stored (the connection closes, the client re-sends).
    if (verdict instanceof Promise) return void verdict.then(apply, (err: Error) => callback(new Error(`retained quota unavailable: ${err.message}`)));
    return apply(verdict);

    function apply(verdict: LimitVerdict) {
      if (verdict.pass) {
        if (verdict.waitMs === 0) return pass(internalTopic);
        // Backpressure: Aedes reads the socket again only once every packet of the batch it parsed has been
        // handled, so holding this callback pauses the client; a QoS 1/2 PUBACK/PUBREC follows the callback.
        setTimeout(() => pass(internalTopic), verdict.waitMs);
        return;
      }
      if (verdict.drop) return discard();
      return refuse(verdict.limit);
    }

    function pass(internalTopic: string) {
      packet.topic = internalTopic;
      hot.messagesIn++;
      callback(null);
    }
    function discard() {
      packet.topic = DROPPED_TOPIC;
      packet.retain = false;
      callback(null);
    }
    function refuse(reason: string) {
      ctx.metrics.decisions.labels('publish', 'denied', reason).inc();
      ctx.logger.info(
        { clientId: client!.id, actorId: state!.grant.actorId, scopeId: state!.grant.accessScopeId, topic: String(packet.topic).slice(0, 200), reason, action: drop ? 'drop' : 'disconnect' },
        'publish refused',
      );
      if (!drop) return callback(new Error(`publish refused: ${reason}`));
      discard();
    }
  };
}
