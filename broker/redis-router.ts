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
const MQEmitter = require('mqemitter') as { prototype: MQEmitterBase; call(self: unknown, opts: object): void };

export interface RoutedPacket {
  topic: string;
  payload: Buffer | string;
  [field: string]: unknown;
}

/** Levels of an internal topic that name its Redis channel: `$sg/<projectId>/<app>`. */
const MOUNTED_LEVELS = 3;

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
 */
export class RedisRouter {
  private readonly origin = randomBytes(8).toString('hex');
  private readonly channelPrefix: string;
  private readonly catchAll: string;
  /** Desired channel → number of local filters needing it (catch-all included under its own name). */
  private readonly channels = new Map<string, number>();
  private catchAllActive = false;
  closed = false;

  constructor(
    private readonly pub: RedisConnection,
    private readonly sub: RedisConnection,
    prefix: string,
    private readonly logger: Logger,
  ) {
    MQEmitter.call(this, { concurrency: 0 });
    this.channelPrefix = `${prefix}route:`;
    this.catchAll = `${this.channelPrefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    sub.on('messageBuffer', (_channel: Buffer, message: Buffer) => {
      if (!this.catchAllActive) this.receive(message);
    });
    sub.on('pmessageBuffer', (_pattern: Buffer, _channel: Buffer, message: Buffer) => this.receive(message));
    sub.on('ready', () => this.resubscribe());
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
    this.subscribe(channel).finally(() => done?.());
    return this;
  }

  removeListener(topic: string, cb: Listener, done?: () => void): this {
    MQEmitter.prototype.removeListener.call(this, topic, cb);
    const channel = this.redisChannel(topic);
    const n = this.channels.get(channel) ?? 0;
    if (n > 1) this.channels.set(channel, n - 1);
    else if (n === 1) {
      this.channels.delete(channel);
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
    const channel = coarseChannel(packet.topic) ?? packet.topic;
    this.pub.publish(this.channelPrefix + channel, this.encode(packet)).then(
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

  private resubscribe(): void {
    for (const channel of this.channels.keys()) void this.subscribe(channel);
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

  private receive(message: Buffer): void {
    if (this.closed) return;
    let packet: RoutedPacket;
    try {
      const len = message.readUInt32BE(0);
      const header = JSON.parse(message.toString('utf8', 4, 4 + len)) as { o: string; s: number; p: Omit<RoutedPacket, 'payload'> };
      if (header.o === this.origin) return;
      const body = message.subarray(4 + len);
      packet = { ...header.p, payload: header.s ? body.toString('utf8') : Buffer.from(body) } as RoutedPacket;
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'undecodable message on a route channel ignored');
      return;
    }
    MQEmitter.prototype.emit.call(this, packet);
  }
}

Object.setPrototypeOf(RedisRouter.prototype, MQEmitter.prototype);
