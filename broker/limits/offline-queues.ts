import { countLimitEvent, type LimitCounters } from './limit-counters.ts';

/**
 * `maxQueuedMessages`: messages queued for one offline persistent session. When the queue is full the
 * NEWEST message is refused for that session (not queued, counted as dropped under `maxQueuedMessages`);
 * what is already queued is kept and delivered in order at the next CONNECT. Sessions connected to this
 * broker are not limited (their queue is the in-flight window).
 *
 * The queue length is read from the persistence where it can be (Redis mode: the length of the session's
 * outgoing list, exact across brokers); with the in-memory persistence (one broker) it is counted here, from
 * the session's last CONNECT on.
 */
export interface QueueLengths {
  /** Queued messages of a session, or null when the persistence cannot say (then counted here). */
  lengthOf(clientId: string): Promise<number> | null;
}

interface Entry {
  limit: number;
  counted: number;
  counters: Map<string, number>;
}

export class OfflineQueues {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly defaultLimit: number,
    private readonly counters: LimitCounters,
    /** Set by server.ts once the persistence exists (Redis mode). */
    public lengths: QueueLengths | null = null,
  ) {}

  /** A session connected: its limit (from its grant) is remembered for when it goes offline; the count restarts. */
  sessionStarted(clientId: string, clean: boolean, limit: number, counters: Map<string, number>): void {
    if (clean) this.entries.delete(clientId);
    else this.entries.set(clientId, { limit, counted: 0, counters });
  }

  /** May one more message be queued for this offline session? */
  async admit(clientId: string): Promise<boolean> {
    let entry = this.entries.get(clientId);
    if (!entry) {
      // Not seen since this broker started: the install's default, counted under the tenant `_unknown`.
      entry = { limit: this.defaultLimit, counted: 0, counters: this.counters.forTenant('_unknown') };
      this.entries.set(clientId, entry);
    }
    const length = this.lengths?.lengthOf(clientId) ?? null;
    const queued = length === null ? entry.counted : await length.catch(() => entry.counted);
    if (queued >= entry.limit) {
      countLimitEvent(entry.counters, 'dropped', 'maxQueuedMessages');
      return false;
    }
    entry.counted++;
    return true;
  }
}
