import { randomUUID } from 'node:crypto';
import type { Client } from 'aedes';
import type { Logger } from 'pino';
import type { LedgerEvent, LedgerReport, LedgerSession } from '../shared/broker-wire.ts';
import type { SidecarClient } from './sidecar-client.ts';

export interface LedgerReporterOptions {
  sidecar: Pick<SidecarClient, 'reportLedger'>;
  brokerId: string;
  logger: Logger;
  /** How often the lease is renewed when there is nothing else to report. */
  heartbeatMs?: number;
}

/**
 * An event waits GATHER_MS for company before its report goes out, and reports go out at most once per
 * REPORT_WINDOW_MS. Under a reconnect storm, reports every 10 ms were as many calls as the CONNECT decisions
 * themselves, and each call costs both processes far more than its size (see CONNECT_CALL_WINDOW_MS in
 * sidecar-client.ts); an event after a quiet spell still goes out after 10 ms. The ledger's limits are
 * unaffected (the sidecar reserves a session's slot when it allows the CONNECT); a session's end frees its
 * slot at most REPORT_WINDOW_MS later.
 */
const GATHER_MS = 10;
const REPORT_WINDOW_MS = 50;

/** What a session subscribed to before its first SUBSCRIBE: one frozen list for all (lists are replaced, never written). */
const NO_SUBSCRIPTIONS = Object.freeze([]) as unknown as string[];

/**
 * A session's ledger entry lives on its Aedes client object, like its state (session-registry.ts): a WeakMap
 * from client to session id and a wrapper object per session were ~120 B of every held connection.
 */
const ENTRY = Symbol('scopegate.ledgerEntry');
type WithEntry = Client & { [ENTRY]?: LedgerSession };

/** Adds the (empty) ledger slot when the client first appears, so every client object has one shape. */
export function initLedgerSlot(client: Client): void {
  (client as WithEntry)[ENTRY] = undefined;
}

function entryOf(client: Client): LedgerSession | undefined {
  return (client as WithEntry)[ENTRY];
}

/**
 * Tells the sidecar's session ledger what happens to this broker's sessions: a session's slot is reserved by
 * the sidecar when it allows the CONNECT (the broker chose the session id); the broker then reports the
 * CONNACK, every change of the session's subscriptions (client view) and its end, in order, batched, and
 * renews its lease on every report and at least every `heartbeatMs`. The lease (3 heartbeats) runs out when
 * this broker dies, and the ledger drops its sessions. When the ledger says it forgot this broker, or keeps
 * holding a number of its sessions that no CONNECT in flight explains, the next report carries the full list
 * (sync). Reports that fail are kept and sent again, in order, with the next one.
 */
export class LedgerReporter {
  readonly brokerId: string;
  /** This broker's sessions by id; each client carries its own entry. */
  private readonly sessions = new Map<string, Client>();
  private queue: LedgerEvent[] = [];
  private needSync = true;
  private mismatches = 0;
  /** CONNECT decisions asked of the sidecar so far, and those of them not yet answered. */
  private asked = 0;
  private deciding = 0;
  private sending: Promise<void> | null = null;
  private scheduled: NodeJS.Timeout | null = null;
  /** When the latest report went out (Date.now()). */
  private lastReportAt = -Infinity;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly heartbeatMs: number;
  private stopped = false;

  constructor(private readonly o: LedgerReporterOptions) {
    this.brokerId = o.brokerId;
    this.heartbeatMs = o.heartbeatMs ?? 5_000;
    this.heartbeat = setInterval(() => this.schedule(0), this.heartbeatMs);
    this.heartbeat.unref();
  }

  get leaseMs(): number {
    return Math.max(1_000, this.heartbeatMs * 3);
  }

  /** A fresh id for a CONNECT about to be decided; call decided() when the sidecar's answer (or none) is in. */
  newSessionId(): string {
    this.asked++;
    this.deciding++;
    return `sess_${randomUUID().replaceAll('-', '')}`;
  }

  /** The decision of a CONNECT begun with newSessionId() is in (allowed, denied or failed). */
  decided(): void {
    this.deciding--;
  }

  /** The sidecar allowed the CONNECT and reserved the slot of `sessionId`. */
  reserved(client: Client, sessionId: string, actorId: string, clientId: string, remoteAddress: string | undefined): void {
    (client as WithEntry)[ENTRY] = { sessionId, actorId, clientId, connectedAt: Date.now(), state: 'connecting', subscriptions: NO_SUBSCRIPTIONS, ...(remoteAddress ? { remoteAddress: remoteAddress.slice(0, 200) } : {}) };
    this.sessions.set(sessionId, client);
  }

  /** The CONNACK was sent. */
  connected(client: Client): void {
    const entry = this.liveEntryOf(client);
    if (!entry) return;
    entry.state = 'connected';
    this.push({ type: 'connected', sessionId: entry.sessionId });
  }

  /** The session's subscriptions now, in the client's view. */
  subscriptions(client: Client, filters: string[]): void {
    const entry = this.liveEntryOf(client);
    if (!entry) return;
    entry.subscriptions = filters;
    // Only the latest list matters: an earlier unsent one of the same session is replaced.
    this.queue = this.queue.filter((e) => !(e.type === 'subscriptions' && e.sessionId === entry.sessionId));
    this.push({ type: 'subscriptions', sessionId: entry.sessionId, subscriptions: filters });
  }

  /** The session ended, or its CONNECT did not complete. Idempotent. */
  ended(client: Client): void {
    const entry = entryOf(client);
    if (entry === undefined) return;
    // Cleared, not deleted: `delete` would turn the client into a slow dictionary-mode object.
    (client as WithEntry)[ENTRY] = undefined;
    if (this.sessions.get(entry.sessionId) !== client) return;
    this.sessions.delete(entry.sessionId);
    this.push({ type: 'ended', sessionId: entry.sessionId });
  }

  /** The live client of a session of this broker (for an admin's disconnect). */
  clientOf(sessionId: string): Client | undefined {
    return this.sessions.get(sessionId);
  }

  sessionIdOf(client: Client): string | undefined {
    return entryOf(client)?.sessionId;
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Sends what is left (best effort) and stops. */
  async stop(): Promise<void> {
    clearInterval(this.heartbeat);
    if (this.scheduled) clearTimeout(this.scheduled);
    await this.sending?.catch(() => undefined);
    this.stopped = true;
    if (this.queue.length > 0) await this.send().catch(() => undefined);
  }

  /** Resolves once everything queued so far has been sent (tests). */
  async flushed(): Promise<void> {
    while (this.queue.length > 0 || this.sending || this.needSync) {
      this.schedule(0);
      await (this.sending ?? new Promise((r) => setTimeout(r, 10)));
    }
  }

  /**
   * Whether the ledger's count of this broker's sessions, answered to a report, is explained by what this
   * broker held when it made the report. The count is taken after the report was applied, so it holds every
   * session held then (ends since then are not reported yet), plus any reservation the sidecar made for a
   * CONNECT decision that was in flight then or asked since (its answer may reach the broker before or after
   * the report's). Why not plain equality: with sessions coming and going during the round trip it was
   * almost never equal, and each pair of misses sent the full list (10,000 sessions: ~150 ms of broker CPU
   * and more in the sidecar, stalling revocations behind it).
   */
  private explains(count: number, at: { held: number; deciding: number; asked: number }): boolean {
    return count >= at.held && count <= at.held + at.deciding + (this.asked - at.asked);
  }

  /** The client's entry while it is this broker's session of that id (not after its end). */
  private liveEntryOf(client: Client): LedgerSession | undefined {
    const entry = entryOf(client);
    return entry !== undefined && this.sessions.get(entry.sessionId) === client ? entry : undefined;
  }

  private push(e: LedgerEvent): void {
    this.queue.push(e);
    this.schedule(this.reportDelay());
  }

  private reportDelay(): number {
    return Math.max(GATHER_MS, this.lastReportAt + REPORT_WINDOW_MS - Date.now());
  }

  private schedule(delayMs: number): void {
    if (this.stopped || this.sending) return;
    if (this.scheduled && delayMs > 0) return;
    if (this.scheduled) clearTimeout(this.scheduled);
    this.scheduled = setTimeout(() => {
      this.scheduled = null;
      this.sending = this.send()
        .catch((err: unknown) => {
          this.o.logger.debug({ err: (err as Error).message }, 'session ledger report failed; retrying');
          if (!this.stopped && !this.scheduled) this.scheduled = setTimeout(() => ((this.scheduled = null), this.schedule(0)), 1_000);
        })
        .finally(() => {
          this.sending = null;
          if (this.queue.length > 0) this.schedule(this.reportDelay());
        });
    }, delayMs);
    this.scheduled.unref();
  }

  private async send(): Promise<void> {
    this.lastReportAt = Date.now();
    const events = this.queue;
    this.queue = [];
    const sync = this.needSync ? [...this.sessions.values()].flatMap((client) => {
          const entry = entryOf(client);
          return entry ? [{ ...entry, subscriptions: [...entry.subscriptions] }] : [];
        }) : undefined;
    const report: LedgerReport = { brokerId: this.brokerId, leaseMs: this.leaseMs, events, ...(sync ? { sync } : {}) };
    const at = { held: this.sessions.size, deciding: this.deciding, asked: this.asked };
    let answer;
    try {
      answer = await this.o.sidecar.reportLedger(report);
    } catch (err) {
      this.queue = [...events, ...this.queue];
      throw err;
    }
    if (sync) this.needSync = false;
    if (!answer.known) {
      this.needSync = true;
      this.schedule(0);
    } else if (!this.explains(answer.sessions, at)) {
      // Twice in a row: one odd answer may be a race this count cannot see; a lasting one means entries were lost.
      if (++this.mismatches >= 2) this.needSync = true;
    } else this.mismatches = 0;
  }
}
