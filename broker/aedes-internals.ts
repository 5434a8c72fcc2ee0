import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import type { Aedes, AuthorizePublishHandler, Client } from 'aedes';

/**
 * Every place where ScopeGate relies on Aedes behaviour that is not part of Aedes' typed, documented API.
 *
 * An Aedes upgrade is one file to review (this one) and one suite to run (test/aedes-internals.test.ts,
 * one contract test per touch point). Nothing else in broker/ reads or writes a private Aedes field or
 * depends on an undocumented Aedes behaviour; new touches go here, with a comment saying why they are
 * needed and which Aedes behaviour they rely on.
 *
 * Written for (and checked at start against, see `checkAedesVersions`): aedes 1.2.0,
 * aedes-persistence-redis 11.2.2.
 */

/** The versions this module was written for and its contract suite was run against. */
export const SUPPORTED_VERSIONS = Object.freeze({ aedes: ['1.2.0'], 'aedes-persistence-redis': ['11.2.2'] });

const require = createRequire(import.meta.url);

/** An installed package outside the versions this module was written for. */
export class UnsupportedAedesVersionError extends Error {
  constructor(pkg: string, found: string, supported: readonly string[]) {
    super(
      `${pkg} ${found} is installed, but broker/aedes-internals.ts was written for ${pkg} ${supported.join(' or ')}. ` +
        `Review every touch point in broker/aedes-internals.ts against ${pkg} ${found}, run test/aedes-internals.test.ts, ` +
        `then add ${found} to SUPPORTED_VERSIONS (or install ${pkg}@${supported.at(-1)}).`,
    );
    this.name = 'UnsupportedAedesVersionError';
  }
}

/**
 * Refuses to start on an Aedes (and, in Redis mode, aedes-persistence-redis) version this module was not
 * written for: every touch point below may silently stop holding on another version, and some of them
 * (the subscription rewrite, the stored-view guard) are what keeps a client inside its scope.
 */
export function checkAedesVersions(redisMode: boolean, installed: (pkg: string) => string = installedVersion): void {
  for (const pkg of ['aedes', ...(redisMode ? ['aedes-persistence-redis'] : [])] as const) {
    const found = installed(pkg);
    const supported = SUPPORTED_VERSIONS[pkg as keyof typeof SUPPORTED_VERSIONS];
    if (!supported.includes(found)) throw new UnsupportedAedesVersionError(pkg, found, supported);
  }
}

/** The version of an installed package, read from its package.json. */
export function installedVersion(pkg: string): string {
  // The package's own package.json, found next to its entry point (its `exports` may not list package.json).
  const entry = require.resolve(pkg);
  const dir = entry.slice(0, entry.lastIndexOf(`/node_modules/${pkg}/`) + `/node_modules/${pkg}/`.length);
  return (require(`${dir}package.json`) as { version: string }).version;
}

// ---------------------------------------------------------------------------------------------------------
// Private fields of an Aedes client and broker, typed in one place.

type StoredSubscription = { qos: number };
type WillPacket = { topic: string; payload?: Buffer; qos?: number; retain?: boolean };
interface Persistence {
  outgoingUpdate(client: unknown, packet: { cmd?: string; [field: string]: unknown }, ...rest: unknown[]): Promise<unknown> | undefined;
  removeSubscriptions(client: unknown, topics: string[]): Promise<unknown>;
  delWill(client: { id: string; brokerId: string }): Promise<unknown>;
  putWill(client: unknown, packet: WillPacket): Promise<unknown>;
  createRetainedStreamCombi(patterns: string[]): unknown;
  createRetainedStream(pattern: string): unknown;
  destroy?: () => Promise<void>;
}
type ClientInternals = Client & {
  subscriptions: Record<string, StoredSubscription | undefined>;
  will: WillPacket | null;
  _will: WillPacket | null;
  _parser?: { client?: Client; prependListener(event: 'packet', fn: (this: { client: Client }, packet: IncomingPacket) => void): unknown };
  connDetails?: { ipAddress?: string } | null;
  broker: Aedes & { persistence: Persistence };
};
type BrokerInternals = Aedes & { persistence: Persistence };

// ---------------------------------------------------------------------------------------------------------
// 1. The CONNECT packet, rewritten in preConnect.

/** The fields of a CONNECT packet ScopeGate reads and rewrites in preConnect. */
export interface ConnectPacketView {
  clientId: string;
  clean: boolean;
  username?: string;
  password?: Buffer;
  will?: WillPacket | null;
}

/**
 * The CONNECT packet as Aedes hands it to preConnect. Why: inside the broker the client id is
 * `<actorId>/<clientId>` and the will topic is internal, and both must be final before Aedes uses them.
 * Relies on: Aedes calling preConnect with the very packet object it then reads in `init` (`client.id =
 * packet.clientId`, `client._will = packet.will`), after preConnect's callback — so assignments here are what
 * Aedes registers, stores and publishes.
 */
export function connectPacketOf(packet: unknown): ConnectPacketView {
  return packet as ConnectPacketView;
}

/**
 * Drops the credentials from a CONNECT packet once its decision has read them. Why: mqtt-packet's parser keeps
 * the CONNECT packet for the connection's whole life (`parser.settings = packet`, for the protocol version), so
 * the password (a JWT: ~450 B of Buffer) and the username stayed in memory for as long as each connection was
 * held. Relies on: Aedes reading `username` and `password` only to hand them to the authenticate hook
 * (handlers/connect.js `authenticate`), and ScopeGate's authenticate ignoring them (the CONNECT was decided in
 * preConnect). Assigned, not deleted: every CONNECT packet keeps one shape.
 */
export function forgetCredentials(packet: ConnectPacketView): void {
  packet.username = undefined;
  packet.password = undefined;
}

// ---------------------------------------------------------------------------------------------------------
// 2. SUBSCRIBE / UNSUBSCRIBE tap on the client's parser.

export type IncomingPacket = { cmd: string; subscriptions?: { topic: string; qos?: number }[]; unsubscriptions?: string[] };

/**
 * Makes a tap that calls `fn` with every packet a client sends, before Aedes handles it (and before Aedes queues
 * it while the CONNECT is pending); `install(client)` puts it on one client. Why: Aedes has no unsubscribe hook,
 * and it persists a SUBSCRIBE's whole subscription list while other entries may still be undecided; rewriting
 * the packet before Aedes sees it is the only way to make both use internal filters. Relies on: `client._parser`
 * being the mqtt-packet parser whose 'packet' listener (added in the Client constructor) hands packets to Aedes,
 * so a listener prepended to it runs first, on the same packet object; and `parser.client` (set in the Client
 * constructor) naming its client, so that every client shares one listener instead of a closure each. Throws
 * when there is no parser: without the rewrite a client's filters would reach Aedes unscoped.
 */
export function incomingPacketTap(fn: (client: Client, packet: IncomingPacket) => void): (client: Client) => void {
  function tap(this: { client: Client }, packet: IncomingPacket): void {
    fn(this.client, packet);
  }
  return (client) => {
    const parser = (client as ClientInternals)._parser;
    if (!parser || typeof parser.prependListener !== 'function' || parser.client !== client) {
      throw new Error('Aedes client has no _parser naming it: this Aedes version is not supported by ScopeGate (see broker/aedes-internals.ts)');
    }
    parser.prependListener('packet', tap);
  };
}

// ---------------------------------------------------------------------------------------------------------
// 3. Subscriptions Aedes holds for a live client.

/**
 * The QoS the client subscribed with under an internal filter (undefined when it holds no such
 * subscription). Why: Aedes downgrades a delivery's QoS to the subscription's by looking up
 * `client.subscriptions[packet.topic]` *after* authorizeForward, when the topic is already in the client's
 * view, so that lookup misses and ScopeGate does the downgrade itself. Relies on: `client.subscriptions`
 * being keyed by the filter as subscribed (internal) with `{ qos }` values.
 */
export function subscriptionQos(client: Client, internalFilter: string): number | undefined {
  return (client as ClientInternals).subscriptions[internalFilter]?.qos;
}

/**
 * Every subscription a live client holds, as [internal filter, qos]. Why: a policy change must re-decide
 * every subscription of a session, and Aedes offers no public listing. Relies on: `client.subscriptions`
 * (see subscriptionQos), a null-prototype object.
 */
export function subscriptionsOf(client: Client): Array<[filter: string, qos: number]> {
  const subs = (client as ClientInternals).subscriptions ?? {};
  return Object.keys(subs).map((f) => [f, subs[f]!.qos]);
}

/**
 * Removes subscriptions from a persistent session's stored state, so they are not restored at the next
 * CONNECT (client.unsubscribe only removes the live ones). Why: a subscription the current grant no longer
 * allows must not come back. Relies on: `client.broker.persistence.removeSubscriptions(client, filters)`
 * (aedes-persistence's interface) keyed by `client.id`. Failures are ignored: the subscription is re-decided
 * (and refused) at restore anyway.
 */
export function removeStoredSubscriptions(client: Client, filters: string[]): void {
  if (client.clean || filters.length === 0) return;
  (client as ClientInternals).broker.persistence.removeSubscriptions(client, filters).catch(() => undefined);
}

// ---------------------------------------------------------------------------------------------------------
// 4. The will of a live client.

/** The will topic of a live session (internal), or null when it has none. */
export function willTopicOf(client: Client): string | null {
  return (client as ClientInternals).will?.topic ?? null;
}

/**
 * Points a live session's will at a new internal topic (the actor moved), in memory and in the persistence.
 * Why: the will must follow the actor's namespace, also when this broker dies and another one publishes the
 * stored copy. Relies on: Aedes publishing `client.will` (the object itself) at an abnormal close, and
 * `persistence.putWill(client, will)` replacing the stored copy (as Aedes' own storeWill does at CONNECT).
 */
export function setWillTopic(client: Client, topic: string): void {
  const c = client as ClientInternals;
  if (!c.will) return;
  c.will.topic = topic;
  c.broker.persistence.putWill(c, c.will).catch(() => undefined);
}

/**
 * Drops a live session's will, in memory and in the persistence, so it is never published (a revoked,
 * expired or no-longer-allowed session). Why: Aedes has no API to cancel a will. Relies on: Aedes reading
 * `client.will` at close (and `client._will` while the CONNECT is being processed, copied to `will` in
 * storeWill), and `persistence.delWill({ id, brokerId })` removing the stored copy that another broker's will
 * sweep would publish after a crash.
 */
export function discardWill(client: Client): void {
  const c = client as ClientInternals;
  const had = c.will !== null || c._will !== null;
  c.will = null;
  c._will = null;
  if (had && c.id) c.broker.persistence.delWill({ id: c.id, brokerId: c.broker.id }).catch(() => undefined);
}

/**
 * Is `packet`, handed to authorizePublish with this client, the client's own will being published at close?
 * Why: a will was decided and rewritten at CONNECT (its topic is internal) and must only be re-checked
 * against the current grant, not decided again as a client topic. Relies on: Aedes passing the
 * `client.will` object itself (identity) to authorizePublish in Client#close; and, for wills of dead brokers
 * swept from the persistence, passing `that.clients[will.clientId] || null` — which may be a *live* client of
 * the same id (the owner reconnected here), with a packet that is not its will.
 */
export function isOwnWill(client: Client, packet: unknown): boolean {
  return packet === (client as ClientInternals).will;
}

/**
 * Is `packet`, handed to authorizePublish, a will of another broker's session swept from the persistence
 * (that broker stopped sending heartbeats)? Why: such a will must be re-decided against its owner's grant of
 * today, and never be refused with an error, which Aedes turns into an 'error' event that ends the sweep (and,
 * with nobody listening, the process). Relies on: Aedes' will sweep (`_clearWills`, every 4 heartbeat
 * intervals) handing authorizePublish `that.clients[will.clientId] || null` and the stored will, which
 * `putWill` marked with `clientId` and `brokerId` (a PUBLISH from the wire carries neither).
 */
export function sweptWillOf(client: Client | null, packet: unknown): { clientId: string; brokerId: string } | null {
  if (client !== null && isOwnWill(client, packet)) return null;
  const p = packet as { clientId?: unknown; brokerId?: unknown };
  return typeof p.clientId === 'string' && typeof p.brokerId === 'string' ? { clientId: p.clientId, brokerId: p.brokerId } : null;
}

// ---------------------------------------------------------------------------------------------------------
// 5. Registered clients.

/**
 * Takes clients whose connection closed during the CONNECT steps out of Aedes' client table again. Why: Aedes
 * checks for a closed connection only right after authenticate; a connection that closes later (while the
 * session is fetched or the will stored) is still registered (`broker.clients[id]`, `connectedClients`) and,
 * being closed already, never unregistered — 1,500 CONNECTs that close at once leave 1,500 entries. Relies
 * on: `_finishRegisterClient` setting `clients[id]` and `connectedClients++` before emitting 'client', and
 * `deleteClient(id)` undoing both.
 */
export function forgetClientsClosedBeforeRegistration(aedes: Aedes): void {
  const b = aedes as Aedes & { clients: Record<string, Client | undefined>; deleteClient(id: string): void };
  aedes.on('client', (client) => {
    if (client.closed && b.clients[client.id] === client) b.deleteClient(client.id);
  });
}

// ---------------------------------------------------------------------------------------------------------
// 6. Connection details.

/** While a connection is corked: what its buffer held when the turn began (see outgoingBytes); else -1. */
const BACKLOG_AT_CORK = Symbol('scopegate.backlogAtCork');
/** The connection's own write, which gatheredWrite calls. */
const UNGATHERED_WRITE = Symbol('scopegate.ungatheredWrite');
type Gathered = { [BACKLOG_AT_CORK]: number; [UNGATHERED_WRITE]: (...args: never[]) => boolean; cork(): void; uncork(): void; writableLength?: number };

/**
 * Makes Aedes' writes to this connection never wait for 'drain', and gathers each loop turn's writes into one.
 *
 * Never waiting. Why: Aedes writes a delivery with `mqtt.writeToStream(packet, conn)` and, when the socket's
 * buffer is over its high-water mark, waits for 'drain' (up to `drainTimeout`, 60 s) before calling back; its
 * emitter delivers at most `concurrency` (100) messages at once for *all* clients and waits with it, so one
 * client that stops reading froze delivery for every tenant. With the wrapper the emitter moves on at once,
 * and the connection's own buffer is bounded by ScopeGate instead (authorizeForward checks `outgoingBytes`
 * before each delivery; see slow-consumers.ts). Relies on: lib/write.js waiting only when `writeToStream`
 * returns false, which returns the last `conn.write` result.
 *
 * Gathering. Why: Aedes writes each delivery from its own setImmediate, and an idle socket sends each write
 * at once: one syscall per message, ~30 % of the broker's CPU at full speed. Plain Aedes gets its batching
 * from the very wait above (while it waits for 'drain', messages pile up and go out together, and the
 * publisher is read in larger chunks); without the wait, ScopeGate's broker measured 0.55–0.9× plain Aedes
 * in the mqtt.js load shape (issue 10). So the first write of a loop turn corks the connection and the next
 * turn's check phase uncorks it: everything written in between leaves in one writev. The delay is one turn
 * of the event loop (microseconds when idle). Relies on: Node's Writable cork/uncork (net.Socket and the
 * WebSocket stream are both Writables).
 */
export function neverWaitForDrain(conn: { write: (...args: never[]) => boolean; cork(): void; uncork(): void; writableLength?: number }): void {
  const gathered = conn as unknown as Gathered;
  gathered[BACKLOG_AT_CORK] = -1;
  gathered[UNGATHERED_WRITE] = conn.write;
  conn.write = gatheredWrite;
}

/**
 * The write of every gathering connection, one function for all (`this` is the connection): a closure per
 * connection and a bound copy of its write were ~250 B of every held connection.
 */
function gatheredWrite(this: Gathered, ...args: never[]): boolean {
  if (this[BACKLOG_AT_CORK] < 0) {
    this[BACKLOG_AT_CORK] = this.writableLength ?? 0;
    this.cork();
    setImmediate(uncorkGathered, this);
  }
  this[UNGATHERED_WRITE](...args);
  return true;
}

function uncorkGathered(conn: Gathered): void {
  conn[BACKLOG_AT_CORK] = -1;
  conn.uncork();
}

/**
 * Bytes written to the client's connection that the network has not taken (its outgoing buffer), not counting
 * what this turn of the event loop gathered: those are not sent yet (neverWaitForDrain), which says nothing
 * about the client being slow. Without that, a fast subscriber sent 100 messages of 10 KiB in one turn looked
 * like a full 1 MiB buffer.
 */
export function outgoingBytes(client: Client): number {
  const conn = client.conn as unknown as Partial<Gathered> & { writableLength?: number };
  const atCork = conn[BACKLOG_AT_CORK];
  return atCork !== undefined && atCork >= 0 ? atCork : (conn.writableLength ?? 0);
}

/**
 * Makes a listener that calls `fn` with a client once its connection has closed, however that happens (also
 * before Aedes registered the client, when it never reports the end with 'clientDisconnect');
 * `install(client)` puts it on one connection. Relies on: Aedes' Client constructor setting `conn.client` to
 * the client: every connection shares one listener instead of a closure (and a `once` wrapper) each. 'close'
 * is emitted once per connection, and `fn` must be idempotent anyway (Aedes reports most ends twice).
 */
export function connectionClosed(fn: (client: Client) => void): (client: Client) => void {
  function closed(this: { client?: Client }): void {
    if (this.client) fn(this.client);
  }
  return (client) => {
    const conn = client.conn as unknown as NodeJS.EventEmitter & { client?: Client };
    if (conn.client !== client) throw new Error('Aedes connection does not name its client: this Aedes version is not supported by ScopeGate (see broker/aedes-internals.ts)');
    conn.on('close', closed);
  };
}

/**
 * The client's remote address: for WebSocket connections Aedes copies `req.connDetails` of the request given
 * to `aedes.handle(stream, req)` to `client.connDetails` (undocumented; aedes-server-factory's convention, set
 * by handleWithAddress below); for TCP it is the socket's peer. Why not `socket.remoteAddress`: Node keeps
 * its answer (`_peername`, an object of address, family and port) on the socket for the connection's life,
 * ~80 B of every held connection for an address read once at CONNECT. Relies on: a net.Socket's `_handle`
 * (a TCPWrap) having `getpeername(out)` that fills `out.address` and returns 0; anything else (a stream
 * without one, a handle already closed) falls back to `remoteAddress`.
 */
export function remoteAddressOf(client: Client): string | undefined {
  const details = (client as ClientInternals).connDetails;
  if (details?.ipAddress) return details.ipAddress;
  const conn = client.conn as { remoteAddress?: string; _peername?: unknown; _handle?: { getpeername?: (out: { address?: string }) => number } | null };
  const handle = conn._handle;
  if (conn._peername === undefined && typeof handle?.getpeername === 'function') {
    const out: { address?: string } = {};
    if (handle.getpeername(out) === 0 && typeof out.address === 'string') return out.address;
  }
  return conn.remoteAddress ?? undefined;
}

/**
 * Hands a WebSocket connection to Aedes with its client's address (`req.connDetails.ipAddress`, which Aedes
 * 1.x keeps as `client.connDetails`): a WebSocket stream has no `remoteAddress` of its own.
 */
export function handleWithAddress(aedes: Aedes, stream: import('node:stream').Duplex, req: import('node:http').IncomingMessage, ipAddress: string | undefined): void {
  (req as import('node:http').IncomingMessage & { connDetails?: unknown }).connDetails = { ipAddress, isWebsocket: true };
  aedes.handle(stream, req);
}

// ---------------------------------------------------------------------------------------------------------
// 7. The persistence.

function persistenceOf(aedes: Aedes): Persistence {
  return (aedes as BrokerInternals).persistence;
}

/**
 * Aedes 1.2 sends a retained message on SUBSCRIBE without storing outgoing state for it, then answers a
 * persistent session's PUBREC for such a QoS 2 message with `no such packet`, which closes the connection
 * (`mosquitto_sub -c -q 2` on a topic with a retained QoS 2 message is disconnected on every SUBSCRIBE). The
 * protocol wants a PUBREL either way: an unknown PUBREC is answered, not fatal. Only that one case is let
 * through. Relies on: Aedes' PUBREC handler calling `persistence.outgoingUpdate(client, pubrel)` (two
 * arguments, cmd 'pubrel') and writing the PUBREL only when it resolves; the in-memory persistence rejecting
 * an unknown packet with 'no such packet', aedes-persistence-redis with 'unknown key' (its message-id cache
 * has no entry for a packet that was never stored).
 */
export function tolerateUnknownPubrec(aedes: Aedes): void {
  const persistence = persistenceOf(aedes);
  const outgoingUpdate = persistence.outgoingUpdate.bind(persistence);
  persistence.outgoingUpdate = (client, packet, ...rest) => {
    const result = outgoingUpdate(client, packet, ...rest);
    if (rest.length > 0 || packet.cmd !== 'pubrel' || !result) return result;
    return result.catch((err: unknown) => {
      const message = (err as Error | undefined)?.message;
      if (message === 'no such packet' || message === 'unknown key') return undefined;
      throw err;
    });
  };
}

/**
 * The stored copy of a queued message must never carry one subscriber's view. Aedes' live QoS 1/2 delivery
 * to a persistent session calls `persistence.outgoingUpdate(client, packet)` with the packet *after*
 * authorizeForward rewrote it into the subscriber's view, and aedes-persistence-redis writes that packet back
 * to the `packet:<broker>:<counter>` key every subscriber's queue shares: another subscriber replaying its
 * queue would get this subscriber's topic (a scoped actor could make a message look as if it came from
 * another scope). So authorizeForward remembers the internal topic and QoS of such a delivery
 * (`rememberStoredTopic`), and this wrapper stores the packet with them; a client-view packet with nothing
 * remembered is not stored at all (the message stays queued as it was, at worst delivered again).
 *
 * Relies on: Client#deliverQoS calling authorizeForward, then, for `!client.clean && !packet.retain`,
 * `outgoingUpdate` with a QoSPacket that keeps the forwarded packet's brokerId and brokerCounter; the live
 * packet authorizeForward sees having no messageId yet (queue replays, which call outgoingUpdate *before*
 * authorizeForward with the stored, internal topic, already have one); internal topics starting with `$`.
 */
export function keepStoredTopicsInternal(aedes: Aedes): void {
  const persistence = persistenceOf(aedes);
  const outgoingUpdate = persistence.outgoingUpdate.bind(persistence);
  persistence.outgoingUpdate = (client, packet, ...rest) => {
    const p = packet as ForwardedPacket;
    if (p.cmd === 'pubrel' || typeof p.topic !== 'string' || p.topic.charCodeAt(0) === 36 /* $ */) return outgoingUpdate(client, packet, ...rest);
    const remembered = STORED_TOPICS.get(client as Client);
    const key = `${p.brokerId}:${p.brokerCounter}`;
    const internal = remembered?.get(key);
    if (!internal) return Promise.resolve(undefined);
    remembered!.delete(key);
    return outgoingUpdate(client, { ...p, topic: internal.topic, qos: internal.qos }, ...rest);
  };
}

type ForwardedPacket = { cmd?: string; topic: string; qos: number; retain?: boolean; messageId?: number; brokerId?: string; brokerCounter?: number };
const STORED_TOPICS = new WeakMap<Client, Map<string, { topic: string; qos: number }>>();
/** Bound per client: entries live from authorizeForward to the outgoingUpdate one tick later. */
const MAX_REMEMBERED = 4_096;

/**
 * Called by authorizeForward with the packet still internal, before it is shown in the client's view:
 * remembers its topic and QoS when Aedes is about to store the forwarded copy (see keepStoredTopicsInternal).
 */
export function rememberStoredTopic(client: Client, packet: ForwardedPacket): void {
  if (client.clean || packet.qos === 0 || packet.retain || packet.messageId !== undefined) return;
  let remembered = STORED_TOPICS.get(client);
  if (!remembered) STORED_TOPICS.set(client, (remembered = new Map()));
  if (remembered.size >= MAX_REMEMBERED) remembered.delete(remembered.keys().next().value!);
  remembered.set(`${packet.brokerId}:${packet.brokerCounter}`, { topic: packet.topic, qos: packet.qos });
}

/**
 * aedes-persistence-redis 11 returns the retained-message lookup as an async iterable, while Aedes 1.x pipes
 * it as a stream (`stream.pipe` in the SUBSCRIBE handler), which would close every connection that
 * subscribes; the adapter wraps it with Readable.from. Other stream-returning methods are consumed by Aedes
 * with pipeline/for-await, which accept both.
 */
export function adaptRetainedStreams(persistence: unknown): void {
  const p = persistence as Persistence;
  const combi = p.createRetainedStreamCombi.bind(p) as (patterns: string[]) => AsyncIterable<unknown>;
  p.createRetainedStreamCombi = (patterns: string[]) => Readable.from(combi(patterns));
  p.createRetainedStream = (pattern: string) => Readable.from(combi([pattern]));
}

/**
 * Aedes 1.2's CONNECT handler (storeWill) calls `persistence.delWill(client).finally(…)` and never handles
 * the promise `.finally` returns: a delWill rejected by a Redis outage became an unhandled rejection, and
 * Node ended the broker (seen: Redis SIGKILLed while CONNECTs with wills were in flight). delWill here
 * resolves `null` when the deletion fails (the will stays stored); the putWill that follows a CONNECT with a
 * will fails on its own, and Aedes refuses that CONNECT. Relies on: Aedes calling delWill before putWill at
 * every CONNECT, and elsewhere (client close) ignoring delWill's result.
 */
export function settleWillDeletion(persistence: unknown): void {
  const p = persistence as Persistence;
  const delWill = p.delWill.bind(p);
  p.delWill = (client) => delWill(client).catch(() => null);
}

/** Releases the persistence at shutdown (its own connections); Aedes#close does not. */
export async function destroyPersistence(aedes: Aedes): Promise<void> {
  await persistenceOf(aedes)?.destroy?.().catch(() => undefined);
}

// ---------------------------------------------------------------------------------------------------------
// 7b. Stored state of a removed topic space or a deleted actor (issue 11 item 10; broker/topic-space-purge.ts).

export type StoredRetained = { topic: string; payload: Buffer; qos: number; retain: boolean; [field: string]: unknown };

/**
 * The retained messages whose internal topic matches `pattern`. Relies on: `persistence.createRetainedStream
 * Combi(patterns)` returning something async-iterable of stored packets (a Readable: Aedes' in-memory
 * persistence, and aedes-persistence-redis once adapted by adaptRetainedStreams).
 */
export function retainedMatching(aedes: Aedes, pattern: string): AsyncIterable<StoredRetained> {
  return persistenceOf(aedes).createRetainedStreamCombi([pattern]) as AsyncIterable<StoredRetained>;
}

/**
 * Stores a retained message as is, bypassing the publish path (no delivery, no authorization): an empty
 * payload removes the topic's retained message. Relies on: both persistences' `storeRetained(packet)`
 * deleting on an empty payload.
 */
export function storeRetainedDirect(aedes: Aedes, packet: StoredRetained): Promise<unknown> {
  return (persistenceOf(aedes) as unknown as { storeRetained(p: StoredRetained): Promise<unknown> }).storeRetained(packet);
}

/**
 * Removes a stored session's subscriptions, so nothing is queued for it any more, and its stored will. With
 * aedes-persistence-redis, removing the last subscription also deletes the session's queue and its entry in
 * the set of clients. Relies on: `persistence.cleanSubscriptions({ id })` and `delWill({ id, brokerId })`.
 */
export async function removeStoredSession(aedes: Aedes, clientId: string): Promise<void> {
  const p = persistenceOf(aedes) as unknown as Persistence & { cleanSubscriptions(c: { id: string }): Promise<unknown> };
  await p.cleanSubscriptions({ id: clientId });
  await p.delWill({ id: clientId, brokerId: aedes.id });
}

/** aedes-persistence-redis' set of client ids with stored subscriptions (a key under the connection's prefix). */
export const REDIS_CLIENTS_KEY = 'clients';

// ---------------------------------------------------------------------------------------------------------
// 7. Limits (SPEC §7).

type LengthParser = { client?: Client; packet: { length: number; cmd?: string }; _parseLength(): boolean; _emitError(err: Error): unknown };

/**
 * Makes a limit that refuses a packet whose declared length is over `maxBytes` as soon as its fixed header is
 * read, before its body is buffered (mqtt-packet has no maxPacketSize of its own: a 64 MiB PUBLISH would be
 * buffered whole); `install(client)` puts it on one client's parser. Why: one client must not exhaust the
 * broker's memory. Relies on: mqtt-packet 9's Parser calling `this._parseLength()` (looked up on the instance,
 * the same prototype method for every parser) once the remaining length is decoded into `this.packet.length`,
 * `_emitError` making Aedes close the connection ('error' on the parser), and `parser.client` naming its
 * client (set in Aedes' Client constructor): every parser shares one limited `_parseLength` instead of a
 * closure each.
 */
export function packetSizeLimit(maxBytes: number, onTooLarge: (client: Client, length: number) => void): (client: Client) => void {
  let parseLength: (() => boolean) | null = null;
  function limitedLength(this: LengthParser): boolean {
    const done = parseLength!.call(this);
    if (done && this.packet.length > maxBytes) {
      onTooLarge(this.client!, this.packet.length);
      this._emitError(new Error(`packet of ${this.packet.length} bytes is over the limit of ${maxBytes}`));
      return false;
    }
    return done;
  }
  return (client) => {
    const parser = (client as ClientInternals)._parser as unknown as LengthParser | undefined;
    if (!parser || typeof parser._parseLength !== 'function' || parser.client !== client) {
      throw new Error('Aedes client parser has no _parseLength or does not name its client: this mqtt-packet version is not supported by ScopeGate (see broker/aedes-internals.ts)');
    }
    parseLength ??= parser._parseLength;
    if (parser._parseLength !== parseLength) {
      throw new Error('mqtt-packet parsers do not share one _parseLength: this mqtt-packet version is not supported by ScopeGate (see broker/aedes-internals.ts)');
    }
    parser._parseLength = limitedLength;
  };
}

/**
 * Lets `admit` decide, per offline persistent session, whether a message is queued for it. Why:
 * `maxQueuedMessages` (Aedes queues without bound). Relies on: Aedes' publish path calling
 * `persistence.outgoingEnqueueCombi(subs, packet)` with every persistent subscription matching a QoS > 0
 * message, each `{ clientId, topic, qos }`, and `broker.clients[clientId]` holding the sessions connected to
 * this broker (those are not limited).
 */
export function limitOfflineQueues(aedes: Aedes, admit: (clientId: string) => Promise<boolean>): void {
  type Enqueue = (subs: Array<{ clientId: string }>, packet: unknown) => Promise<unknown>;
  const persistence = persistenceOf(aedes) as unknown as { outgoingEnqueueCombi: Enqueue };
  const clients = (aedes as unknown as { clients: Record<string, unknown> }).clients;
  const enqueue = persistence.outgoingEnqueueCombi.bind(persistence);
  persistence.outgoingEnqueueCombi = async (subs, packet) => {
    if (!subs || subs.length === 0) return enqueue(subs, packet);
    const keep = await Promise.all(subs.map((s) => (clients[s.clientId] ? true : admit(s.clientId))));
    return enqueue(subs.filter((_, i) => keep[i]), packet);
  };
}

/** Length of a session's outgoing queue in aedes-persistence-redis (key `outgoing:<encoded client id>`). */
export function redisOutgoingKey(clientId: string): string {
  return `outgoing:${encodeURIComponent(clientId)}`;
}

// ---------------------------------------------------------------------------------------------------------
// 8. QoS 1 PUBACK only after the message is stored and routed (Redis mode).

type PublishFn = (packet: object, client: Client | null, done: (err?: Error | null) => void) => void;
const ROUTED = Symbol('scopegate.routedBeforeAck');

/**
 * Aedes 1.2 answers a QoS 1 PUBLISH by writing the PUBACK first and publishing afterwards
 * (handlers/publish.js `enqueuePublish`, case 1), so a PUBACKed message is lost when the publish then fails
 * (Redis down). This wraps the publish authorizer: once allowed, a client's QoS 1 packet is published right
 * there (retained stored, offline queues written, routed through the emitter) and marked; Aedes' own
 * publish of the marked packet then does nothing, so the PUBACK it writes follows a successful publish. If
 * the publish fails, the authorizer fails: no PUBACK, Aedes closes the connection, and the client re-sends
 * the message after reconnecting. A client's QoS 0 message whose publish fails is dropped (counted by
 * `onQos0Dropped`) instead of closing the connection; the broker's own publishes (wills, $SYS) keep
 * reporting their failure.
 *
 * Relies on: Aedes calling authorizePublish and then `broker.publish(packet, client, done)` with the very
 * packet object it handed to authorizePublish; `Aedes#publish(packet, [client], done)` being the one entry
 * of every publish (client messages, wills, $SYS) and replaceable on the instance.
 */
export function ackAfterPublish(authorize: AuthorizePublishHandler): { authorizePublish: AuthorizePublishHandler; attach(aedes: Aedes, onQos0Dropped: () => void): void } {
  let publish: PublishFn | null = null;
  return {
    authorizePublish: (client, packet, callback) =>
      authorize(client, packet, (err) => {
        if (err || packet.qos !== 1 || client === null || !publish) return callback(err);
        publish(packet, client, (publishErr) => {
          if (publishErr) return callback(new Error(`message not stored/routed: ${publishErr.message}`));
          (packet as { [ROUTED]?: boolean })[ROUTED] = true;
          callback(null);
        });
      }),
    attach(aedes, onQos0Dropped) {
      const original = aedes.publish.bind(aedes) as unknown as PublishFn;
      publish = original;
      (aedes as unknown as { publish: (packet: object, clientOrDone?: unknown, maybeDone?: unknown) => void }).publish = (packet, clientOrDone, maybeDone) => {
        const client = typeof clientOrDone === 'function' ? null : ((clientOrDone ?? null) as Client | null);
        const done = (typeof clientOrDone === 'function' ? clientOrDone : (maybeDone ?? (() => undefined))) as (err?: Error | null) => void;
        const p = packet as { [ROUTED]?: boolean; qos?: number };
        if (p[ROUTED]) {
          p[ROUTED] = false;
          return done(null);
        }
        if (p.qos || !client) return original(packet, client, done);
        original(packet, client, (err) => {
          if (err) onQos0Dropped();
          done(null);
        });
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// 9. The message emitter's backlog (in-memory mode).

type EmitterInternals = {
  concurrency: number;
  current: number;
  _messageQueue?: unknown[];
  _do(message: unknown, callback: unknown): unknown;
};

/** How many queued messages one call stack may release in a row before the rest move to the next tick. */
const MAX_SYNC_RELEASES = 64;

/**
 * Bounds the recursion of Aedes' default emitter (mqemitter 7) when it works off its backlog. Why: mqemitter
 * delivers at most `concurrency` (100) messages at once and queues the rest; when one delivery finishes,
 * `released` takes the next queued message and calls `_do` on it, on the same stack. A message that matches
 * no subscription finishes at once (fastparallel calls `released` synchronously when there is nothing to
 * call), so a run of such messages in the queue recurses once per message. Aedes hands a whole socket read
 * to the emitter at once (lib/client.js `enqueue`), so one client with valid credentials could write ~50,000
 * small PUBLISHes to a topic nobody subscribes, behind a few hundred to a subscribed one, in one TCP write:
 * "Maximum call stack size exceeded" ended the broker process, every tenant's sessions with it. (Plain
 * Aedes falls over the same way; `npm run bench` saw its process exit when a subscriber left under load.)
 *
 * After MAX_SYNC_RELEASES nested `_do` calls, the next one runs on process.nextTick instead, holding the
 * emitter slot `released` just gave back so that nothing emitted meanwhile overtakes it: order is kept, the
 * stack unwinds. Relies on: mqemitter's `released` calling `that._do(message, callback)` through the
 * instance (so an own `_do` is used), `current` counting messages in flight, and `emit` queueing while
 * `current >= concurrency`. Redis mode's router has no queue (concurrency 0) and is left alone.
 */
export function boundEmitterRecursion(aedes: Aedes): void {
  const mq = (aedes as Aedes & { mq: EmitterInternals }).mq;
  if (!(mq.concurrency > 0) || !Array.isArray(mq._messageQueue) || typeof mq._do !== 'function') return;
  const run = mq._do;
  let depth = 0;
  mq._do = function boundedDo(this: EmitterInternals, message: unknown, callback: unknown) {
    if (depth >= MAX_SYNC_RELEASES) {
      this.current++;
      process.nextTick(() => {
        this.current--;
        this._do(message, callback);
      });
      return this;
    }
    depth++;
    try {
      return run.call(this, message, callback);
    } finally {
      depth--;
    }
  };
}
