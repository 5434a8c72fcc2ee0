import { createHash } from 'node:crypto';
import type { Aedes, Client } from 'aedes';
import type { Logger } from 'pino';
import type { SharedFilter } from '../shared/topic.ts';
import { stateOf } from './session-registry.ts';
import { decideForward, decideSubscribe, isRefusal, subscriptionStillAllowed, type Refusal, type SessionState } from './session-state.ts';

/**
 * Shared subscriptions (`$share/<group>/<filter>`) on Aedes 1.x, which has none of its own.
 *
 * Design:
 * - A member's subscription is kept by Aedes (session persistence, UNSUBSCRIBE, restore) under a *member
 *   filter* `$sgshare/<client key>/<group>/<internal filter>` that no real publish ever matches (real internal
 *   topics start with `$sg/`, and clients cannot write `$` topics). The client key is a hash of the broker
 *   client id, so every member's filter is its own.
 * - Per group, the broker holds ONE subscription of its own on the internal filter (the dispatcher). For each
 *   matching message it picks one member, round robin, skipping members that are offline or whose delivery
 *   is refused, and republishes the message to that member's filter with the original internal topic
 *   appended (`$sgshare/<client key>/<group>/<internal topic>`). Aedes then delivers it like any message:
 *   QoS 1/2 is queued in the member's persistent session and acknowledged as usual, and authorizeForward
 *   shows the original topic in the member's own view.
 * - A group is namespaced by the subscriber's scope: its key is (access scope, group name, internal filter),
 *   so the same group name in two scopes (or two tenants) is two groups, and a project-level actor's group
 *   is not a scoped actor's group even for the same internal filter.
 * - Offline members with a persistent session stay in the group but are skipped; only when no member is
 *   connected does a QoS ≥ 1 message go to the next persistent member's queue (a QoS 0 message is dropped).
 * - Several brokers: each broker dispatches to the members connected to it, and `claim` (Redis SET NX on the
 *   message's broker id and counter) lets exactly one broker deliver each message to each group.
 */

const MARKER_ROOT = '$sgshare';
const MARKER_PREFIX = `${MARKER_ROOT}/`;

/** Whether a broker may deliver this message to this group (one broker cluster-wide wins). */
export type Claim = (messageKey: string) => boolean | Promise<boolean>;

/** Stable, filter-safe key of a broker client id (no `/`, `+`, `#`). */
export function clientKey(clientId: string): string {
  return createHash('sha256').update(clientId).digest('base64url').slice(0, 16);
}

export function isMemberFilter(topic: string): boolean {
  return topic.startsWith(MARKER_PREFIX);
}

/** `$sgshare/<key>/<group>/<internal>` → its parts, or null. Works for member filters and delivered topics. */
export function parseMember(topic: string): { key: string; group: string; internal: string } | null {
  if (!isMemberFilter(topic)) return null;
  const a = topic.indexOf('/', MARKER_PREFIX.length);
  const b = a < 0 ? -1 : topic.indexOf('/', a + 1);
  if (b < 0) return null;
  return { key: topic.slice(MARKER_PREFIX.length, a), group: topic.slice(a + 1, b), internal: topic.slice(b + 1) };
}

/** SUBSCRIBE / UNSUBSCRIBE of `$share/<group>/<filter>`: the member filter, or why not. */
export function decideSharedSubscribe(state: SessionState, clientId: string, shared: SharedFilter): string | Refusal {
  const inner = decideSubscribe(state, shared.filter);
  if (isRefusal(inner)) return inner;
  return `${MARKER_PREFIX}${clientKey(clientId)}/${shared.group}/${inner}`;
}

/** A member filter Aedes holds (new or restored), checked against the current grant. */
export function memberStillAllowed(state: SessionState, clientId: string, memberFilter: string): boolean {
  const m = parseMember(memberFilter);
  return m !== null && m.key === clientKey(clientId) && subscriptionStillAllowed(state, m.internal);
}

/** The original internal topic of a message delivered through a group, or null if `topic` is not one. */
export function deliveredInternalTopic(topic: string): string | null {
  return parseMember(topic)?.internal ?? null;
}

interface Member {
  clientId: string;
  /** The connected client, or null while a persistent member is offline. */
  client: Client | null;
  memberFilter: string;
  qos: number;
}

interface Group {
  key: string;
  /** Short hash of the key, for cluster claims. */
  id: string;
  internalFilter: string;
  members: Member[];
  /** Index of the member whose turn is next. */
  next: number;
  dispatch: (packet: DispatchedPacket, cb: () => void) => void;
}

type DispatchedPacket = { topic: string; payload: Buffer | string; qos: number; brokerId?: string; brokerCounter?: number };

export class SharedGroups {
  private readonly groups = new Map<string, Group>();
  /** clientId → keys of the groups it is a member of. */
  private readonly byClient = new Map<string, Set<string>>();

  constructor(
    private readonly aedes: Aedes,
    private readonly claim: Claim,
    private readonly logger: Logger,
  ) {}

  /** A member filter was allowed for this client (new SUBSCRIBE or restored session). */
  join(client: Client, state: SessionState, memberFilter: string, qos: number): void {
    const m = parseMember(memberFilter);
    if (!m) return;
    const key = groupKey(state, m.group, m.internal);
    let group = this.groups.get(key);
    if (!group) {
      group = this.open(key, m.internal);
    }
    const existing = group.members.find((x) => x.clientId === client.id && x.memberFilter === memberFilter);
    if (existing) {
      existing.client = client;
      existing.qos = qos;
    } else {
      group.members.push({ clientId: client.id, client, memberFilter, qos });
    }
    let keys = this.byClient.get(client.id);
    if (!keys) this.byClient.set(client.id, (keys = new Set()));
    keys.add(key);
  }

  /** UNSUBSCRIBE, or a subscription dropped by a policy change. */
  leave(clientId: string, memberFilter: string): void {
    for (const key of this.byClient.get(clientId) ?? []) {
      const group = this.groups.get(key);
      if (!group) continue;
      const i = group.members.findIndex((x) => x.clientId === clientId && x.memberFilter === memberFilter);
      if (i >= 0) this.remove(group, i);
    }
  }

  /** The client's connection ended: a clean session leaves its groups, a persistent one stays as offline. */
  disconnected(client: Client): void {
    for (const key of [...(this.byClient.get(client.id) ?? [])]) {
      const group = this.groups.get(key);
      if (!group) continue;
      for (let i = group.members.length - 1; i >= 0; i--) {
        const member = group.members[i]!;
        if (member.clientId !== client.id || member.client !== client) continue; // a takeover's new client stays
        if (client.clean) this.remove(group, i);
        else member.client = null;
      }
    }
  }

  /** The session is no longer allowed at all (revoked): it leaves every group, offline or not. */
  forget(clientId: string): void {
    for (const key of [...(this.byClient.get(clientId) ?? [])]) {
      const group = this.groups.get(key);
      if (!group) continue;
      for (let i = group.members.length - 1; i >= 0; i--) if (group.members[i]!.clientId === clientId) this.remove(group, i);
    }
  }

  /** A client connected with a clean session: its old persistent memberships are gone with its session. */
  connected(client: Client): void {
    if (!client.clean) return;
    for (const key of [...(this.byClient.get(client.id) ?? [])]) {
      const group = this.groups.get(key);
      if (!group) continue;
      for (let i = group.members.length - 1; i >= 0; i--) {
        if (group.members[i]!.clientId === client.id && group.members[i]!.client === null) this.remove(group, i);
      }
    }
  }

  /** Groups and members (connected / offline) on this broker, for tests and metrics. */
  snapshot(): { key: string; members: { clientId: string; connected: boolean }[] }[] {
    return [...this.groups.values()].map((g) => ({ key: g.key, members: g.members.map((m) => ({ clientId: m.clientId, connected: m.client !== null })) }));
  }

  private open(key: string, internalFilter: string): Group {
    const group: Group = {
      key,
      id: createHash('sha256').update(key).digest('base64url').slice(0, 22),
      internalFilter,
      members: [],
      next: 0,
      dispatch: (packet, cb) => {
        cb();
        this.dispatch(group, packet);
      },
    };
    this.groups.set(key, group);
    this.aedes.subscribe(internalFilter, group.dispatch as never, () => undefined);
    return group;
  }

  private remove(group: Group, index: number): void {
    const [member] = group.members.splice(index, 1);
    if (index < group.next) group.next--;
    if (member) {
      const stillMember = [...this.groups.values()].some((g) => g.members.some((m) => m.clientId === member.clientId));
      if (!stillMember) this.byClient.delete(member.clientId);
      else if (!group.members.some((m) => m.clientId === member.clientId)) this.byClient.get(member.clientId)?.delete(group.key);
    }
    if (group.members.length === 0) {
      this.groups.delete(group.key);
      this.aedes.unsubscribe(group.internalFilter, group.dispatch as never, () => undefined);
    }
  }

  private dispatch(group: Group, packet: DispatchedPacket): void {
    const member = this.pick(group, packet);
    if (!member) return;
    const messageKey = `${packet.brokerId ?? ''}:${packet.brokerCounter ?? ''}:${group.id}`;
    const deliver = (won: boolean) => {
      if (!won) return;
      const topic = `${MARKER_PREFIX}${member.memberFilter.slice(MARKER_PREFIX.length).split('/', 2).join('/')}/${packet.topic}`;
      const qos = Math.min(packet.qos, member.qos) as 0 | 1 | 2;
      this.aedes.publish({ cmd: 'publish', topic, payload: packet.payload, qos, retain: false, dup: false } as never, (err?: Error) => {
        if (err) this.logger.warn({ err: err.message, group: group.key }, 'shared subscription delivery failed');
      });
    };
    const won = this.claim(messageKey);
    if (typeof won === 'boolean') deliver(won);
    else won.then(deliver, (err: unknown) => this.logger.warn({ err: (err as Error).message }, 'shared subscription claim failed; message not delivered to the group'));
  }

  /**
   * The member whose turn it is: the next connected member whose delivery is allowed; if none is connected,
   * a QoS ≥ 1 message goes to the next offline member with a persistent session (it is queued there).
   */
  private pick(group: Group, packet: DispatchedPacket): Member | null {
    const n = group.members.length;
    let offline: number | null = null;
    for (let step = 0; step < n; step++) {
      const i = (group.next + step) % n;
      const member = group.members[i]!;
      const client = member.client;
      if (client === null) {
        if (offline === null && packet.qos > 0 && member.qos > 0) offline = i;
        continue;
      }
      const state = stateOf(client);
      if (client.closed || !state || decideForward(state, packet.topic) === null) continue;
      group.next = (i + 1) % n;
      return member;
    }
    if (offline === null) return null;
    group.next = (offline + 1) % n;
    return group.members[offline]!;
  }
}

/** Groups are namespaced by the subscriber's scope (the project for project-level actors). */
function groupKey(state: SessionState, group: string, internalFilter: string): string {
  const scope = state.grant.accessScopeId ?? `project:${state.grant.projectId}`;
  return `${scope}\u0000${group}\u0000${internalFilter}`;
}

