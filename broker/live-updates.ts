import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { changeEventSchema, delegatedKey, disconnectEventSchema, type BrokerChangeEvent, type DisconnectEvent, type SessionGrant } from '../shared/broker-wire.ts';
import { ChangeHistory } from './change-history.ts';
import { stateOf } from './session-registry.ts';
import type { BrokerMetrics } from './metrics.ts';
import type { SessionControl } from './session-control.ts';
import type { SessionRegistry } from './session-registry.ts';
import type { SidecarClient } from './sidecar-client.ts';

export interface LiveUpdatesOptions {
  sidecar: SidecarClient;
  registry: SessionRegistry;
  sessions: SessionControl;
  metrics: BrokerMetrics;
  logger: Logger;
  /** How long decided sessions keep working while the feed is down; then they are closed. */
  graceMs: number;
  /** No event or heartbeat for this long: the feed is considered dead and reopened. */
  silenceMs?: number;
  /** At most this many actors' grants per refresh call. */
  batchSize?: number;
  /** An admin asked to close a session (`disconnect` event; every broker hears it, its owner acts). */
  onDisconnect?: (event: DisconnectEvent) => void;
  /**
   * A change removed or moved topic spaces or deleted actors (`spaces`, `deletedActors`): called once the
   * sessions the same change concerned were re-decided (broker/topic-space-purge.ts).
   */
  onRemoved?: (event: BrokerChangeEvent) => Promise<void>;
}

/**
 * Keeps live sessions in step with policy: listens to the sidecar's change feed (SSE), and for every change
 * re-fetches the grants of exactly the connected actors whose grant depends on an input the change wrote
 * (the registry indexes sessions by their grants' inputs), and applies them. A write that changes no grant
 * input costs nothing here, whatever the number of sessions.
 *
 * Refreshes are coalesced and bounded: the work queued is a set of actors (at most one entry per connected
 * actor, however many writes name it), fetched in batches, one call at a time, so a grant fetched later is
 * always applied later. A session registered at CONNECT with a grant older than a change already heard that
 * concerns it is re-decided too (a CONNECT racing a revocation). After a (re)connect every session is
 * refreshed, since events may have been missed. While the feed is down, sessions keep their last grant for
 * `graceMs`, then close.
 */
export class LiveUpdates extends EventEmitter<{ refreshed: [string[]] }> {
  private abort: AbortController | null = null;
  private stopped = false;
  private connected = false;
  private downSince: number | null = Date.now();
  private lastHeard = Date.now();
  private pending = new Set<string>();
  private running: Promise<void> | null = null;
  private scheduled = false;
  private removals: Promise<unknown> = Promise.resolve();
  private readonly history = new ChangeHistory();
  private readonly batchSize: number;
  private readonly watchdog: NodeJS.Timeout;
  private readonly silenceMs: number;
  /** Resolves the first time the feed is open (tests, readiness). */
  readonly ready: Promise<void>;
  private markReady!: () => void;

  constructor(private readonly o: LiveUpdatesOptions) {
    super();
    this.silenceMs = o.silenceMs ?? 6_000;
    this.batchSize = o.batchSize ?? 2_000;
    this.ready = new Promise((r) => (this.markReady = r));
    this.watchdog = setInterval(() => this.check(), 250);
    this.watchdog.unref();
  }

  get isUp(): boolean {
    return this.connected;
  }

  start(): void {
    void this.loop();
  }

  /**
   * A session was just registered with a grant from CONNECT. Changes after its revision that arrived before
   * it was registered found no session to re-decide; if one of them concerns this grant, re-decide it now.
   * (While the feed is down there is nothing to check: its reopening re-decides every session.)
   */
  sessionStarted(grant: SessionGrant): void {
    if (!this.connected || !this.history.concerns(grant)) return;
    this.o.metrics.connectRechecks.inc();
    this.enqueue([grant.actorId]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.watchdog);
    this.abort?.abort();
    await this.running?.catch(() => undefined);
  }

  private async loop(): Promise<void> {
    let backoff = 100;
    while (!this.stopped) {
      this.abort = new AbortController();
      try {
        const body = await this.o.sidecar.openChangeFeed(this.abort.signal);
        backoff = 100;
        await this.read(body);
      } catch (err) {
        if (this.stopped) break;
        if (this.connected || backoff === 100) this.o.logger.warn({ err: (err as Error).message }, 'change feed down; sessions keep their grants for the grace period');
      }
      this.setDown();
      if (this.stopped) break;
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 2_000);
    }
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        this.onBlock(block);
      }
    }
  }

  private onBlock(block: string): void {
    let event = 'message';
    let data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data += line.slice(6);
    }
    this.lastHeard = Date.now();
    this.o.metrics.feedLagSeconds.set(0);
    if (event === 'hello') {
      this.history.reset(helloRevision(data));
      this.setUp();
      // Events may have been missed while the feed was down: re-decide every live session.
      this.enqueue(this.o.registry.allActors());
      return;
    }
    if (event === 'disconnect') {
      const d = disconnectEventSchema.safeParse(safeJson(data));
      if (d.success) this.o.onDisconnect?.(d.data);
      return;
    }
    if (event !== 'change') return;
    let parsed: BrokerChangeEvent;
    try {
      parsed = changeEventSchema.parse(JSON.parse(data));
    } catch {
      this.o.logger.warn('change feed: malformed event ignored; re-deciding every session');
      this.enqueue(this.o.registry.allActors());
      return;
    }
    this.history.record(parsed);
    this.closeRevoked(parsed);
    this.enqueue(parsed.all ? this.o.registry.allActors() : this.o.registry.actorsDependingOn(parsed.inputs));
    if (parsed.spaces?.length || parsed.deletedActors?.length) this.afterRefresh(parsed);
  }

  /**
   * Applies a removal once the refresh queued with it is done (the refresh starts on the next turn, so this
   * waits one turn more), one removal at a time and in feed order.
   */
  private afterRefresh(event: BrokerChangeEvent): void {
    const onRemoved = this.o.onRemoved;
    if (!onRemoved) return;
    setImmediate(() => {
      const refreshed = this.running ?? Promise.resolve();
      this.removals = Promise.all([this.removals, refreshed])
        .then(() => onRemoved(event))
        .catch((err: unknown) => this.o.logger.warn({ err: (err as Error).message, seq: event.seq }, 'could not remove what a deleted or moved scope left'));
    });
  }

  /**
   * Sessions of actors the change disabled or deleted are closed now, not after a refresh: the refresh queue
   * is one call at a time, and a revocation behind a refresh of many grants waited for it. Only sessions whose
   * grant is older than the change: one decided after it (the actor enabled again since) stays. A session
   * still in its CONNECT phase (`client.connecting`, Aedes' public flag) is left to the refresh the change's
   * `actor:` input queues, so that no connection is cut between its decision and its CONNACK.
   */
  private closeRevoked(event: BrokerChangeEvent): void {
    for (const actorId of [...(event.disabledActors ?? []), ...(event.deletedActors ?? [])]) {
      for (const client of this.o.registry.clientsOf(actorId)) {
        const grant = stateOf(client)?.grant;
        if (grant && grant.revision < event.seq && !client.connecting) this.o.sessions.close(client, 'revoked');
      }
    }
  }

  /** Queues actors for a refresh; the refresh starts on the next turn, so events read together go together. */
  private enqueue(actorIds: string[]): void {
    for (const a of actorIds) if (this.o.registry.hasClients(a)) this.pending.add(a);
    if (this.pending.size === 0 || this.running || this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (!this.running && this.pending.size > 0) this.running = this.drain().finally(() => (this.running = null));
    });
  }

  private async drain(): Promise<void> {
    while (this.pending.size > 0 && !this.stopped) {
      const batch: string[] = [];
      for (const a of this.pending) {
        batch.push(a);
        if (batch.length >= this.batchSize) break;
      }
      for (const a of batch) this.pending.delete(a);
      const started = process.hrtime.bigint();
      const requestedAt = this.o.sessions.startMark;
      try {
        // Delegated sessions are re-decided with their principal (the intersection of both sides).
        const delegated = new Map<string, { actorId: string; onBehalfOf: string }>();
        for (const actorId of batch) {
          for (const client of this.o.registry.liveClientsOf(actorId)) {
            const onBehalfOf = stateOf(client)?.grant.onBehalfOf;
            if (onBehalfOf) delegated.set(delegatedKey(actorId, onBehalfOf), { actorId, onBehalfOf });
          }
        }
        const answer = await this.o.sidecar.refresh(batch, [...delegated.values()]);
        this.o.metrics.sidecarSeconds.labels('sessions', 'ok').observe(Number(process.hrtime.bigint() - started) / 1e9);
        this.o.metrics.grantsRefreshed.inc(batch.length);
        for (const actorId of batch) {
          for (const client of this.o.registry.clientsOf(actorId)) {
            const onBehalfOf = stateOf(client)?.grant.onBehalfOf;
            const grant = onBehalfOf ? answer.delegated?.[delegatedKey(actorId, onBehalfOf)] : answer.sessions[actorId];
            this.o.sessions.apply(client, grant ?? null, answer.revision, requestedAt);
          }
        }
        // Which actors were re-decided, for whoever watches (the write-cost tests).
        if (this.listenerCount('refreshed') > 0) this.emit('refreshed', batch);
      } catch (err) {
        this.o.metrics.sidecarSeconds.labels('sessions', 'unavailable').observe(Number(process.hrtime.bigint() - started) / 1e9);
        // Keep the old grants (grace) and retry these actors shortly.
        this.o.logger.warn({ err: (err as Error).message, actors: batch.length }, 'could not refresh sessions; retrying');
        for (const a of batch) this.pending.add(a);
        setTimeout(() => this.enqueue([]), 500).unref();
        return;
      }
    }
  }

  private setUp(): void {
    if (!this.connected) this.o.logger.info('change feed connected');
    this.connected = true;
    this.downSince = null;
    this.o.metrics.feedUp.set(1);
    this.markReady();
  }

  private setDown(): void {
    if (this.connected) this.downSince = Date.now();
    this.connected = false;
    this.o.metrics.feedUp.set(0);
  }

  private check(): void {
    const now = Date.now();
    this.o.metrics.feedLagSeconds.set((now - this.lastHeard) / 1000);
    if (this.connected && now - this.lastHeard > this.silenceMs) {
      this.o.logger.warn('change feed silent; reopening');
      this.abort?.abort();
    }
    if (this.downSince !== null && now - this.downSince > this.o.graceMs && this.o.registry.size > 0) {
      this.o.logger.warn({ sessions: this.o.registry.size }, 'sidecar unreachable beyond the grace period: closing sessions');
      for (const client of this.o.registry.allClients()) this.o.sessions.close(client, 'sidecar_grace_expired');
    }
  }
}

function helloRevision(data: string): number {
  try {
    const revision = (JSON.parse(data) as { revision?: unknown }).revision;
    return typeof revision === 'number' ? revision : Number.POSITIVE_INFINITY;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
