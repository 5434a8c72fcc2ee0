import type { Client } from 'aedes';
import { tapIncomingPackets, type IncomingPacket } from '../aedes-internals.ts';
import type { BrokerContext } from '../context.ts';
import { stateOf } from '../session-registry.ts';
import { parseSharedFilter } from '../../shared/topic.ts';
import { decideSharedSubscribe, isMemberFilter } from '../shared-subscriptions.ts';
import { decideSubscribe, isRefusal, REFUSED_FILTER, type Refusal, type SessionState } from '../session-state.ts';

type Packet = IncomingPacket;
const PENDING = Symbol('scopegate.pendingPackets');

/**
 * SUBSCRIBE and UNSUBSCRIBE are rewritten into the client's namespace as they leave the parser, before Aedes
 * handles them, because:
 * - Aedes has no unsubscribe hook: UNSUBSCRIBE with the client's own filter must name the internal filter
 *   Aedes keys the subscription by;
 * - Aedes persists a SUBSCRIBE packet's whole subscription list while other entries of the same packet may
 *   still be undecided, so every entry must already be final (internal filter, or a refused placeholder that
 *   matches nothing) before Aedes sees the packet.
 * Refused filters become `$scopegate/refused/<n>` (unique, so Aedes' de-duplication keeps one SUBACK code per
 * filter) and authorizeSubscribe answers 0x80 for them. Packets that arrive before the CONNECT is decided are
 * held and rewritten once the session state exists (Aedes queues them until CONNACK anyway).
 */
export function installSubscriptionRewriter(client: Client, ctx: BrokerContext): void {
  // The slot exists from the start (one object shape for every client; see connect.ts).
  (client as unknown as Record<symbol, Packet[] | undefined>)[PENDING] = undefined;
  tapIncomingPackets(client, (packet) => {
    if (packet.cmd !== 'subscribe' && packet.cmd !== 'unsubscribe') return;
    const state = stateOf(client);
    if (state) rewrite(state, packet, client, ctx);
    else pendingOf(client).push(packet);
  });
}

/** Called once the session state exists: rewrites what arrived while the CONNECT was being decided. */
export function rewritePending(client: Client, ctx: BrokerContext): void {
  const state = stateOf(client);
  const pending = (client as unknown as Record<symbol, Packet[] | undefined>)[PENDING];
  if (!state || !pending) return;
  for (const packet of pending) rewrite(state, packet, client, ctx);
  pending.length = 0;
}

function pendingOf(client: Client): Packet[] {
  const c = client as unknown as Record<symbol, Packet[] | undefined>;
  return (c[PENDING] ??= []);
}

function rewrite(state: SessionState, packet: Packet, client: Client, ctx: BrokerContext): void {
  if (packet.cmd === 'subscribe' && Array.isArray(packet.subscriptions)) {
    packet.subscriptions.forEach((sub, i) => {
      const decision = decideFilter(state, client, sub.topic);
      if (!isRefusal(decision)) {
        sub.topic = decision;
        return;
      }
      ctx.metrics.decisions.labels('subscribe', 'denied', decision.refused).inc();
      ctx.logger.info({ clientId: client.id, actorId: state.grant.actorId, scopeId: state.grant.accessScopeId, filter: String(sub.topic).slice(0, 200), reason: decision.refused }, 'subscribe refused');
      sub.topic = `${REFUSED_FILTER}/${i}`;
    });
  } else if (packet.cmd === 'unsubscribe' && Array.isArray(packet.unsubscriptions)) {
    packet.unsubscriptions = packet.unsubscriptions.map((topic, i) => {
      const decision = decideFilter(state, client, topic);
      if (isRefusal(decision)) return `${REFUSED_FILTER}/${i}`;
      if (isMemberFilter(decision)) ctx.shared?.leave(client.id, decision);
      return decision;
    });
  }
}

/** A plain filter, or `$share/<group>/<filter>` (the member filter of shared-subscriptions.ts). */
function decideFilter(state: SessionState, client: Client, clientFilter: string): string | Refusal {
  const shared = typeof clientFilter === 'string' ? parseSharedFilter(clientFilter) : null;
  if (shared === null) return decideSubscribe(state, clientFilter);
  if ('refused' in shared) return shared;
  return decideSharedSubscribe(state, client.id, shared);
}
