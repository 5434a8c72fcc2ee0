import type { Client } from 'aedes';
import type { Logger } from 'pino';
import { outgoingBytes } from './aedes-internals.ts';
import type { BrokerMetrics } from './metrics.ts';

/**
 * Slow consumers are bounded by their own outgoing buffer. Writes to a connection never wait (see
 * neverWaitForDrain), so a client that stops reading cannot hold up deliveries to anyone else; what it has
 * not read piles up in its own buffer, and once that holds `maxBytes`:
 * - QoS 0 deliveries to it are dropped (QoS 0 is "at most once");
 * - a QoS 1/2 delivery disconnects it (a persistent session keeps the message queued for its return).
 * The bound may be overshot by the deliveries decided in the same turn of the event loop (at most Aedes'
 * emitter concurrency, 100, messages), since those are written just after.
 */
export class SlowConsumers {
  constructor(
    private readonly maxBytes: number,
    private readonly metrics: BrokerMetrics,
    private readonly logger: Logger,
  ) {}

  /** Has this client's outgoing buffer reached the bound? (Checked before every delivery: one property read.) */
  full(client: Client): boolean {
    return outgoingBytes(client) >= this.maxBytes;
  }

  /**
   * A delivery to a full client: false → drop it (QoS 0); true → let Aedes go on with it (QoS 1/2 of a
   * persistent session, which stays queued), after the connection was closed.
   */
  overflow(client: Client, qos: number): boolean {
    if (qos === 0) {
      this.metrics.slowConsumerDrops.inc();
      return false;
    }
    if (!client.conn.destroyed) {
      this.metrics.sessionsClosed.labels('slow_consumer').inc();
      this.logger.info({ clientId: client.id, bufferedBytes: outgoingBytes(client) }, 'slow consumer disconnected: outgoing buffer full');
      client.conn.destroy();
    }
    return !client.clean;
  }
}
