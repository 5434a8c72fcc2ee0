import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { isReady, type RedisConnection } from '../shared/redis-connection.ts';

const require = createRequire(import.meta.url);
type Listener = (packet: RoutedPacket, done: () => void) => void;
interface MQEmitterBase {
  on(topic: string, cb: Listener, done?: () => void): unknown;
  removeListener(topic: string, cb: Listener, done?: () => void): unknown;
  emit(packet: RoutedPacket, cb?: (err?: Error | null) => void): unknown;
  close(cb: () => void): unknown;
  closed: boolean;
}
/** The frame of a message that is not in a replay log (QoS 0): an id of length 0. */
const UNLOGGED = Buffer.from([0]);
const MQEmitter = require('mqemitter') as { prototype: MQEmitterBase; call(self: unknown, opts: object): void };

export interface RoutedPacket {
  topic: string;
  payload: Buffer | string;
  [field: string]: unknown;
}

/** Levels of an internal topic that name its Redis channel: `$sg/<projectId>/<app>`. */
const MOUNTED_LEVELS = 3;

/** How long a QoS ≥ 1 message stays in its channel's replay log (see RedisRouter). */
export const REPLAY_WINDOW_MS = 30_000;
/** Messages arriving during one channel's catch-up are held back, up to this many, to keep the order. */
const CATCH_UP_BUFFER_CAP = 10_000;
/** A catch-up that cannot read the log (Redis still away) is retried this often, and given up after CATCH_UP_GIVE_UP_MS. */
const CATCH_UP_RETRY_MS = 200;
const CATCH_UP_GIVE_UP_MS = REPLAY_WINDOW_MS;

/**
 * Appends a message to its channel's replay log and publishes it with the log id in front, atomically:
 * KEYS[1] log, ARGV[1] channel, ARGV[2] encoded message, ARGV[3] window (ms). Trims the log to the window
 * by Redis' own clock and lets an idle log expire.
 */
const ROUTE_PUBLISH_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = redis.call('XADD', KEYS[1], 'MINID', '~', tostring(now - tonumber(ARGV[3])), '*', 'm', ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
return redis.call('PUBLISH', ARGV[1], string.char(string.len(id)) .. id .. ARGV[2])
`;

type StreamId = string;
/** Orders two stream ids (`<ms>-<seq>`). */
export function compareStreamIds(a: StreamId, b: StreamId): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  return Number(am) - Number(bm) || Number(as) - Number(bs);
}

/** What the router knows of one exact channel: the last logged id seen, and a catch-up in progress. */
interface ChannelState {
  lastId: StreamId | null;
  catchingUp: Array<{ id: StreamId; message: Buffer }> | null;
}

type RouteConnection = RedisConnection & {
  routePublish?(log: string, channel: string, message: Buffer, windowMs: number): Promise<unknown>;
};

/**
 * The Redis channel (after the prefix) that carries a topic, and that a subscription filter needs: the
 * project mount and app of an internal topic (`$sg/<project>/<app>`), the first level of any other topic
 * (`$SYS`). Null when those levels of a filter hold a wildcard: such a filter needs every channel.
 */
export function coarseChannel(topicOrFilter: string): string | null {
  const levels = topicOrFilter.split('/', MOUNTED_LEVELS);
  const n = levels[0] === '$sg' ? MOUNTED_LEVELS : 1;
  const head = levels.slice(0, n);
  for (const l of head) if (l === '+' || l === '#') return null;
  return head.join('/');
}

/**
 * Aedes' message emitter in Redis mode (replaces mqemitter-redis): brokers exchange messages over Redis
 * pub/sub on coarse channels, one per project mount and app, and every broker matches the MQTT filters of
 * its own subscriptions locally (mqemitter's trie).
 *
 * Why coarse channels: Redis matches each PUBLISH against every PSUBSCRIBE pattern of every connection, so
 * mapping MQTT wildcards to Redis patterns (as mqemitter-redis does) makes every publish cost in proportion
 * to all tenants' wildcard filters. Here a broker SUBSCRIBEs (exact, hashed in Redis) to the channels its
 * local filters can match; a PUBLISH costs one hash lookup plus the brokers listening on that channel. Only
 * a filter with a wildcard inside the channel levels (never a client's: apps have no wildcards) needs the
 * single catch-all pattern.
 *
 * Delivery: a message is PUBLISHed to Redis first and then delivered to this broker's own listeners, so the
 * emit callback (which Aedes waits for before a PUBACK/PUBREC) means "routed to every broker"; if Redis
 * refuses, nothing is delivered and the callback gets the error. A broker ignores its own messages coming
 * back from Redis.
 *
 * Subscriptions are kept as a desired set and (re)subscribed whenever the subscriber connection becomes
 * ready, so filters added while Redis was down take effect when it returns.
 *
 * Replay (QoS 1/2): Redis pub/sub delivers only to connections subscribed at that moment, so a broker whose
 * subscriber connection was down (Redis restarted, a failover, a network blip) would miss messages another
 * broker had already PUBACKed. A QoS ≥ 1 message is therefore also appended, in the same script, to a
 * short log per channel (a Redis stream keeping REPLAY_WINDOW_MS), and the stream id travels with the
 * message. Each broker remembers the last id it saw per channel; when its subscriber connection is ready
 * again it resubscribes, reads the log after that id and delivers what it missed, in order, before the
 * messages that arrived meanwhile. A subscriber connection down longer than the window loses what is older
 * (logged). QoS 0 messages are not logged: they may be dropped.
 */
export class RedisRouter {
  private readonly origin = randomBytes(8).toString('hex');
  private readonly channelPrefix: string;
  private readonly catchAll: string;
  /** Desired channel → number of local filters needing it (catch-all included under its own name). */
  private readonly channels = new Map<string, number>();
  private catchAllActive = false;
  /** Exact channel (with prefix) → replay state; kept while the channel is subscribed. */
  private readonly states = new Map<string, ChannelState>();
  /** Whether the subscriber connection was ready once: a later 'ready' is a reconnect, which catches up. */
  private wasReady = false;
  closed = false;

  constructor(
    private readonly pub: RouteConnection,
    private readonly sub: RedisConnection,
    prefix: string,
    private readonly logger: Logger,
  ) {
    MQEmitter.call(this, { concurrency: 0 });
    this.channelPrefix = `${prefix}route:`;
    this.catchAll = `${this.channelPrefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    if (!pub.routePublish) pub.defineCommand('routePublish', { numberOfKeys: 1, lua: ROUTE_PUBLISH_LUA });
    sub.on('messageBuffer', (channel: Buffer, message: Buffer) => {
      if (!this.catchAllActive) this.receive(channel.toString(), message);
    });
    sub.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer, message: Buffer) => this.receive(channel.toString(), message));
    sub.on('ready', () => {
      const reconnect = this.wasReady;
      this.wasReady = true;
      this.resubscribe(reconnect);
    });
  }

  on(topic: string, cb: Listener, done?: () => void): this {
    MQEmitter.prototype.on.call(this, topic, cb);
    const channel = this.redisChannel(topic);
    const n = this.channels.get(channel) ?? 0;
    this.channels.set(channel, n + 1);
    if (n > 0) {
      if (done) setImmediate(done);
      return this;
    }
    if (channel === this.catchAll) this.catchAllActive = true;
    else this.states.set(channel, { lastId: null, catchingUp: null });
    this.startPosition(channel)
      .then(() => this.subscribe(channel))
      .finally(() => done?.());
    return this;
  }

  removeListener(topic: string, cb: Listener, done?: () => void): this {
    MQEmitter.prototype.removeListener.call(this, topic, cb);
    const channel = this.redisChannel(topic);
    const n = this.channels.get(channel) ?? 0;
    if (n > 1) this.channels.set(channel, n - 1);
    else if (n === 1) {
      this.channels.delete(channel);
      this.states.delete(channel);
      if (channel === this.catchAll) this.catchAllActive = false;
      const undo = channel === this.catchAll ? this.sub.punsubscribe(channel) : this.sub.unsubscribe(channel);
      undo.catch(() => undefined);
    }
    if (done) setImmediate(done);
    return this;
  }

  emit(packet: RoutedPacket, cb?: (err?: Error | null) => void): this {
    const done = cb ?? ((err?: Error | null) => err && this.logger.debug({ err: err.message }, 'message not routed'));
    if (this.closed) {
      done(new Error('router closed'));
      return this;
    }
    const channel = this.channelPrefix + (coarseChannel(packet.topic) ?? packet.topic);
    const message = this.encode(packet);
    const routed =
      typeof packet.qos === 'number' && packet.qos > 0
        ? this.pub.routePublish!(this.logKey(channel), channel, message, REPLAY_WINDOW_MS)
        : this.pub.publish(channel, Buffer.concat([UNLOGGED, message]));
    routed.then(
      () => MQEmitter.prototype.emit.call(this, packet, done),
      (err: Error) => done(err),
    );
    return this;
  }

  close(cb: () => void): this {
    this.closed = true;
    MQEmitter.prototype.close.call(this, cb);
    return this;
  }

  /** True while both connections are usable. */
  get ready(): boolean {
    return isReady(this.pub) && isReady(this.sub);
  }

  private redisChannel(filter: string): string {
    const channel = coarseChannel(filter);
    return channel === null ? this.catchAll : this.channelPrefix + channel;
  }

  private subscribe(channel: string): Promise<unknown> {
    const p = channel === this.catchAll ? this.sub.psubscribe(channel) : this.sub.subscribe(channel);
    // While Redis is down this fails; resubscribe() runs again when the connection is ready.
    return p.catch(() => undefined);
  }

  /** The replay log of an exact channel (a key, so under REDIS_BROKER_PREFIX by the connection's keyPrefix). */
  private logKey(channel: string): string {
    return `route-log:${channel.slice(this.channelPrefix.length)}`;
  }

  /**
   * Before the first SUBSCRIBE of a channel: its position is the log's last id (the start, if the log is
   * empty). Read before subscribing, so no message at or before it can still arrive live; a catch-up after
   * a reconnect replays from the last id seen.
   */
  private async startPosition(channel: string): Promise<void> {
    const state = this.states.get(channel);
    if (!state || state.lastId !== null) return;
    try {
      const last = (await this.pub.xrevrange(this.logKey(channel), '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
      if (state.lastId === null) state.lastId = last[0]?.[0] ?? '0-0';
    } catch {
      // Redis away: the position stays unknown until the first logged message (no replay before it).
    }
  }

  private resubscribe(reconnect: boolean): void {
    for (const channel of this.channels.keys()) {
      const state = this.states.get(channel);
      if (reconnect && state?.lastId != null && !state.catchingUp) {
        state.catchingUp = [];
        void this.subscribe(channel).then(() => this.catchUp(channel, state, Date.now()));
      } else void this.subscribe(channel);
    }
  }

  /** Reads the channel's log after the last id seen, delivers it, then what arrived meanwhile (in id order). */
  private async catchUp(channel: string, state: ChannelState, startedAt: number): Promise<void> {
    if (this.closed || this.states.get(channel) !== state || !state.catchingUp) return;
    let entries: Array<[string, string[] | Buffer[]]>;
    try {
      entries = (await this.pub.xrangeBuffer(this.logKey(channel), `(${state.lastId}`, '+')) as unknown as Array<[string, Buffer[]]>;
    } catch (err) {
      if (Date.now() - startedAt < CATCH_UP_GIVE_UP_MS && (state.catchingUp?.length ?? 0) < CATCH_UP_BUFFER_CAP) {
        setTimeout(() => void this.catchUp(channel, state, startedAt), CATCH_UP_RETRY_MS).unref();
        return;
      }
      this.logger.warn({ channel, err: (err as Error).message }, 'route replay given up: messages published while this broker was disconnected may be missing');
      entries = [];
    }
    const held = state.catchingUp ?? [];
    state.catchingUp = null;
    let replayed = 0;
    for (const [rawId, fields] of entries) {
      const id = rawId.toString();
      const message = fields[1];
      if (!Buffer.isBuffer(message) || compareStreamIds(id, state.lastId ?? '0-0') <= 0) continue;
      state.lastId = id;
      if (this.deliver(message)) replayed++;
    }
    for (const { id, message } of held) {
      if (compareStreamIds(id, state.lastId ?? '0-0') <= 0) continue;
      state.lastId = id;
      this.deliver(message);
    }
    if (replayed > 0) this.logger.info({ channel, replayed }, 'route replay: delivered messages published while this broker was disconnected');
  }

  /** `<u32 header length><header JSON><payload>`; a string payload is flagged so it comes back as one. */
  private encode(packet: RoutedPacket): Buffer {
    const { payload, ...rest } = packet;
    const isString = typeof payload === 'string';
    const header = Buffer.from(JSON.stringify({ o: this.origin, s: isString ? 1 : 0, p: rest }));
    const body = isString ? Buffer.from(payload) : (payload ?? Buffer.alloc(0));
    const out = Buffer.allocUnsafe(4 + header.length + body.length);
    out.writeUInt32BE(header.length, 0);
    header.copy(out, 4);
    body.copy(out, 4 + header.length);
    return out;
  }

  /** A message from a route channel: `<u8 id length><log id><encoded packet>` (id length 0: not logged). */
  private receive(channel: string, framed: Buffer): void {
    if (this.closed || framed.length === 0) return;
    const idLength = framed[0]!;
    const message = framed.subarray(1 + idLength);
    if (idLength === 0) {
      this.deliver(message);
      return;
    }
    const id = framed.toString('latin1', 1, 1 + idLength);
    const state = this.states.get(channel);
    if (!state) {
      this.deliver(message);
      return;
    }
    if (state.catchingUp) {
      if (state.catchingUp.length < CATCH_UP_BUFFER_CAP) state.catchingUp.push({ id, message });
      else this.logger.warn({ channel }, 'route replay buffer full: a message arriving during the catch-up was dropped');
      return;
    }
    if (state.lastId !== null && compareStreamIds(id, state.lastId) <= 0) return; // already delivered by a replay
    state.lastId = id;
    this.deliver(message);
  }

  /** Decodes a routed packet and hands it to local listeners; false when it was this broker's own or undecodable. */
  private deliver(message: Buffer): boolean {
    if (this.closed) return false;
    let packet: RoutedPacket;
    try {
      const len = message.readUInt32BE(0);
      const header = JSON.parse(message.toString('utf8', 4, 4 + len)) as { o: string; s: number; p: Omit<RoutedPacket, 'payload'> };
      if (header.o === this.origin) return false;
      const body = message.subarray(4 + len);
      packet = { ...header.p, payload: header.s ? body.toString('utf8') : Buffer.from(body) } as RoutedPacket;
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'undecodable message on a route channel ignored');
      return false;
    }
    MQEmitter.prototype.emit.call(this, packet);
    return true;
  }
}

Object.setPrototypeOf(RedisRouter.prototype, MQEmitter.prototype);
