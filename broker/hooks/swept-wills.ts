import { toClient } from '../../shared/topic.ts';
import type { BrokerContext } from '../context.ts';
import { decidePublish, sessionStateFor } from '../session-state.ts';
import { DROPPED_TOPIC } from './dropped-topic.ts';

/**
 * The will of a session whose broker died (Redis mode: another broker sweeps it from the persistence). It was
 * decided when its owner connected, but policy may have changed since — the actor moved, was disabled, lost
 * the app — and its owner may even be connected here again, with a session of its own. So the owner's grant of
 * today is fetched from the sidecar and the will is published only if that grant still allows its topic
 * exactly (a moved actor's will, re-stored in its new namespace on the move, passes; one still in the scope
 * the actor left does not).
 *
 * Every surviving broker sweeps a dead broker's wills, so each will is claimed first (a Redis SET NX, see
 * ctx.claims): only the broker that wins publishes it; the others send their copy nowhere.
 *
 * An allowed will is published by this function as a new message (this broker's id and counter), and the
 * stored packet Aedes goes on to publish is sent nowhere: Aedes would publish it under the *dead* broker's id
 * with a counter of its own, which subscribers' duplicate filters (per broker id, increasing counters) drop
 * whenever they saw a later message of the dead broker.
 *
 * A will that may not be published is never refused with an error: Aedes would emit it as an 'error' and stop
 * its sweep, leaving the will stored for the next sweep on every broker. It is sent to a topic nobody can
 * subscribe to instead, and Aedes then deletes it. Only a sidecar that cannot be reached gives an error (the
 * will stays stored and the next sweep tries again).
 */
export type Republish = (message: { topic: string; payload: Buffer; qos: 0 | 1 | 2; retain: boolean }) => Promise<void>;
type SweptWill = { topic: string; payload?: Buffer | string; qos: 0 | 1 | 2; retain: boolean };

export function decideSweptWill(ctx: BrokerContext, will: SweptWill, owner: { clientId: string; brokerId: string }, republish: Republish, callback: (err: Error | null) => void): void {
  const ownerClientId = owner.clientId;
  const slash = ownerClientId.indexOf('/');
  const actorId = slash > 0 ? ownerClientId.slice(0, slash) : '';
  const sendNowhere = () => {
    will.topic = DROPPED_TOPIC;
    will.retain = false;
    callback(null);
  };
  const discard = (reason: string) => {
    ctx.metrics.decisions.labels('will', 'denied', reason).inc();
    ctx.logger.info({ clientId: ownerClientId.slice(0, 200), actorId, topic: String(will.topic).slice(0, 200), reason }, 'will of a dead broker’s session discarded');
    sendNowhere();
  };
  if (!actorId) return discard('no_actor');
  ctx.sidecar.refresh([actorId]).then(
    (answer) => {
      const grant = answer.sessions[actorId] ?? null;
      if (!grant) return discard('revoked');
      const state = sessionStateFor(grant, 1);
      const own = toClient(state.view, will.topic);
      const again = own === null ? null : decidePublish(state, own);
      if (typeof again !== 'string' || again !== will.topic) return discard('no_longer_allowed');
      // Every surviving broker sweeps the dead broker's wills: one claim per will decides which one publishes it.
      const key = `will:${owner.brokerId}:${ownerClientId}`;
      return Promise.resolve(ctx.claims.take(key)).then(
        (won) => {
          if (!won) return sendNowhere();
          ctx.metrics.decisions.labels('will', 'allowed', 'ok').inc();
          const payload = Buffer.isBuffer(will.payload) ? will.payload : Buffer.from(will.payload ?? '');
          return republish({ topic: will.topic, payload, qos: will.qos, retain: will.retain }).then(sendNowhere, (err: unknown) => {
            void ctx.claims.release(key); // not published: the next sweep (here or elsewhere) tries again
            callback(err as Error);
          });
        },
        (err: unknown) => callback(err as Error),
      );
    },
    (err: unknown) => {
      ctx.logger.warn({ err: (err as Error).message, clientId: ownerClientId.slice(0, 200) }, 'will of a dead broker’s session kept for the next sweep: sidecar unreachable');
      callback(new Error('sidecar unreachable: will kept for the next sweep'));
    },
  );
}
