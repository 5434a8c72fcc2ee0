import type { Client } from 'aedes';
import { incomingPacketTap, subscriptionsOf, type IncomingPacket } from '../aedes-internals.ts';
import { countLimitEvent } from '../limits/limit-counters.ts';
import type { BrokerContext } from '../context.ts';
import { stateOf } from '../session-registry.ts';
import { parseSharedFilter } from '../../shared/topic.ts';
import { decideSharedSubscribe, isMemberFilter } from '../shared-subscriptions.ts';
import { decideSubscribe, isRefusal, REFUSED_FILTER, subscribeMaxQos, type Refusal, type SessionState } from '../session-state.ts';

type Packet = IncomingPacket;
const PENDING = Symbol('scopegate.pendingPackets');
/** The internal filters a session holds or has been granted in a SUBSCRIBE Aedes has not finished yet. */
const HELD = Symbol('scopegate.heldFilters');
type WithSlots = Client & { [PENDING]?: Packet[] | undefined; [HELD]?: Set<string> | undefined };

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
 * held and rewritten once the session state exists (Aedes queues them until CONNACK anyway). Made once per
 * broker; the function it returns installs the rewrite on one client.
 */
export function subscriptionRewriter(ctx: BrokerContext): (client: Client) => void {
  const install = incomingPacketTap((client, packet) => {
    if (packet.cmd !== 'subscribe' && packet.cmd !== 'unsubscribe') return;
    const state = stateOf(client);
    if (state) rewrite(state, packet, client, ctx);
    else pendingOf(client).push(packet);
  });
  return (client) => {
    // The slot exists from the start (one object shape for every client; see connect.ts).
    (client as WithSlots)[PENDING] = undefined;
    (client as WithSlots)[HELD] = undefined;
    install(client);
  };
}

/** Called once the session state exists: rewrites what arrived while the CONNECT was being decided. */
export function rewritePending(client: Client, ctx: BrokerContext): void {
  const state = stateOf(client);
  const pending = (client as WithSlots)[PENDING];
  if (!state || !pending) return;
  for (const packet of pending) rewrite(state, packet, client, ctx);
  pending.length = 0;
}

function pendingOf(client: Client): Packet[] {
  const c = client as WithSlots;
  return (c[PENDING] ??= []);
}

/**
 * The filters a session holds, kept in packet order by the rewrite itself (Aedes adds a SUBSCRIBE's filters
 * to the client only once it has handled the packet, so a burst of SUBSCRIBEs would all see the old count).
 * Seeded from what Aedes holds (a restored persistent session) the first time.
 */
function heldOf(client: Client): Set<string> {
  const c = client as WithSlots;
  return (c[HELD] ??= new Set(subscriptionsOf(client).map(([f]) => f)));
}

/** Subscriptions the broker dropped or re-made itself (a policy change), counted as the session's own. */
export function updateHeld(client: Client, removed: readonly string[], added: readonly string[]): void {
  const held = (client as WithSlots)[HELD];
  if (!held) return;
  for (const f of removed) held.delete(f);
  for (const f of added) held.add(f);
}

function rewrite(state: SessionState, packet: Packet, client: Client, ctx: BrokerContext): void {
  if (packet.cmd === 'subscribe' && Array.isArray(packet.subscriptions)) {
    const held = heldOf(client);
    const max = state.limits?.maxSubscriptions ?? Infinity;
    packet.subscriptions.forEach((sub, i) => {
      const decision = decideFilter(state, client, sub.topic);
      let refused: string | null = isRefusal(decision) ? decision.refused : null;
      if (!isRefusal(decision) && !held.has(decision) && held.size >= max) {
        refused = 'maxSubscriptionsPerSession';
        countLimitEvent(state.limits!.counters, 'refused', 'maxSubscriptionsPerSession');
      }
      if (refused === null) {
        // A permission's maxQos (or an open app's): granted at the lower QoS, which the SUBACK shows.
        const maxQos = subscribeMaxQos(state, qosFilterOf(sub.topic));
        if (sub.qos !== undefined && sub.qos > maxQos) sub.qos = maxQos;
        sub.topic = decision as string;
        held.add(sub.topic);
        return;
      }
      ctx.metrics.decisions.labels('subscribe', 'denied', refused).inc();
      ctx.logger.info({ clientId: client.id, actorId: state.grant.actorId, scopeId: state.grant.accessScopeId, filter: String(sub.topic).slice(0, 200), reason: refused }, 'subscribe refused');
      sub.topic = `${REFUSED_FILTER}/${i}`;
    });
  } else if (packet.cmd === 'unsubscribe' && Array.isArray(packet.unsubscriptions)) {
    const held = (client as WithSlots)[HELD];
    packet.unsubscriptions = packet.unsubscriptions.map((topic, i) => {
      const decision = decideFilter(state, client, topic);
      if (isRefusal(decision)) return `${REFUSED_FILTER}/${i}`;
      if (isMemberFilter(decision)) ctx.shared?.leave(client.id, decision);
      held?.delete(decision);
      return decision;
    });
  }
}

/** A plain filter, or `$share/<group>/<filter>` (the member filter of shared-subscriptions.ts). */
/** The filter whose permissions decide a subscription's QoS: a shared subscription's inner filter. */
function qosFilterOf(clientFilter: string): string {
  const shared = parseSharedFilter(clientFilter);
  return shared !== null && !('refused' in shared) ? shared.filter : clientFilter;
}

function decideFilter(state: SessionState, client: Client, clientFilter: string): string | Refusal {
  const shared = typeof clientFilter === 'string' ? parseSharedFilter(clientFilter) : null;
  if (shared === null) return decideSubscribe(state, clientFilter);
  if ('refused' in shared) return shared;
  return decideSharedSubscribe(state, client.id, shared);
}
