import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import {
  connectBatchResponseSchema,
  connectResponseSchema,
  refreshResponseSchema,
  ledgerReportResponseSchema,
  type LedgerReport,
  type LedgerReportResponse,
  type ConnectRequest,
  type ConnectResponse,
  type RefreshResponse,
  unpackRefresh,
} from '../shared/broker-wire.ts';

/** The sidecar could not be asked (down, timed out, answered 5xx or nonsense): the broker fails closed. */
export class SidecarUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SidecarUnavailableError';
  }
}

type PendingConnect = { request: ConnectRequest; resolve: (r: ConnectResponse) => void; reject: (e: unknown) => void };
const MAX_CONNECT_BATCH = 200;
/**
 * One call in flight: the sidecar decides on one event loop, so a second call in flight adds no parallelism;
 * it only splits the CONNECTs of a storm into more, smaller calls, and each call costs the broker a request
 * write and an answer read (in a reconnect storm's profile those writes were the broker's largest cost over
 * plain Aedes). In one quick CONNECT bench run with four calls in flight, 6,588 of ~7,800 calls carried a single
 * CONNECT; with one, the same 30,000 CONNECTs took ~4,800 calls, the broker's CPU per CONNECT fell and the
 * CONNACKs per second rose (`npm run bench -- --quick --only=connect`, measured side by side with plain Aedes).
 */
const MAX_CONNECT_CALLS = 1;
/**
 * A connect call goes out at most once per this many ms: the CONNECTs of a storm gather meanwhile and go
 * together. Each call costs both processes far more than its size (the request and the answer each wake the
 * other process, and the sidecar's per-request work), and with only "one call in flight" a storm's calls went
 * out back to back, ~9 CONNECTs each. Side by side on one sidecar (10,000 CONNECTs per round, 5 rounds), CPU per
 * CONNECT of broker + sidecar against plain Aedes' went from a median ratio of 0.53 without a window to 0.64,
 * 0.76 and 0.85 with 2, 5 and 10 ms, and the CONNACK latency fell with it (the CPU saved is the queue's). A
 * CONNECT after a quiet spell goes at once; one that follows a call within the window waits at most its rest.
 */
export const CONNECT_CALL_WINDOW_MS = 10;

function validated<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } }, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new SidecarUnavailableError(`${what}: the sidecar's answer does not match the wire schema`);
  return result.data;
}

/**
 * The broker's only way to talk to the sidecar's decision API (`/v1/broker/*`). Every answer is validated
 * against the shared wire schema; anything else is SidecarUnavailableError, never a guess.
 */
export class SidecarClient {
  private pendingConnects: PendingConnect[] = [];
  private connectCallsInFlight = 0;
  private connectFlushScheduled = false;
  /** When the latest connect call went out (performance.now()), and the timer holding the next one back. */
  private lastConnectCallAt = -Infinity;
  private connectWindowTimer: NodeJS.Timeout | null = null;
  private readonly httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 64 });
  private readonly httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 64 });

  constructor(
    readonly baseUrl: string,
    private readonly token: string,
    private readonly timeoutMs: number,
    private readonly connectWindowMs = CONNECT_CALL_WINDOW_MS,
  ) {}

  /**
   * Decides a CONNECT. The CONNECTs of one turn of the event loop (those parsed from one burst of reads) go
   * together at the end of the turn, as one batch: one HTTP round trip for many. At most MAX_CONNECT_CALLS
   * calls are in flight, and a call goes out at most once per `connectWindowMs`; CONNECTs that arrive
   * meanwhile (a reconnect storm) wait and go together in the next call. A lone CONNECT on a free line, after a
   * quiet spell, waits only for the end of its turn.
   */
  connect(request: ConnectRequest): Promise<ConnectResponse> {
    return new Promise((resolve, reject) => {
      this.pendingConnects.push({ request, resolve, reject });
      if (this.connectFlushScheduled) return;
      this.connectFlushScheduled = true;
      setImmediate(() => {
        this.connectFlushScheduled = false;
        this.flushConnects();
      });
    });
  }

  private flushConnects(): void {
    if (this.connectCallsInFlight >= MAX_CONNECT_CALLS || this.pendingConnects.length === 0 || this.connectWindowTimer) return;
    const wait = this.lastConnectCallAt + this.connectWindowMs - performance.now();
    if (wait > 0 && this.pendingConnects.length < MAX_CONNECT_BATCH) {
      this.connectWindowTimer = setTimeout(() => {
        this.connectWindowTimer = null;
        this.flushConnects();
      }, wait);
      return;
    }
    this.lastConnectCallAt = performance.now();
    const batch = this.pendingConnects.splice(0, MAX_CONNECT_BATCH);
    this.connectCallsInFlight++;
    void this.sendConnects(batch).finally(() => {
      this.connectCallsInFlight--;
      this.flushConnects();
    });
  }

  private async sendConnects(batch: PendingConnect[]): Promise<void> {
    try {
      if (batch.length === 1) {
        batch[0]!.resolve(validated(connectResponseSchema, await this.post('/v1/broker/connect', batch[0]!.request), 'connect'));
        return;
      }
      const { results } = validated(connectBatchResponseSchema, await this.post('/v1/broker/connect/batch', { requests: batch.map((p) => p.request) }), 'connect batch');
      if (results.length !== batch.length) throw new SidecarUnavailableError('connect batch: wrong number of answers');
      // An entry the sidecar failed to decide fails that CONNECT alone (CONNACK 3), not its neighbours.
      batch.forEach((p, i) => {
        const r = results[i]!;
        if ('error' in r) p.reject(new SidecarUnavailableError(`connect batch entry ${i}: ${r.error.code} ${r.error.message.slice(0, 200)}`));
        else p.resolve(r);
      });
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }

  /** Session events for the live session ledger, and the lease renewal. */
  async reportLedger(report: LedgerReport): Promise<LedgerReportResponse> {
    return validated(ledgerReportResponseSchema, await this.post('/v1/broker/ledger', report), 'ledger');
  }

  async refresh(actorIds: string[], delegated: { actorId: string; onBehalfOf: string }[] = []): Promise<RefreshResponse> {
    const body = delegated.length > 0 ? { actorIds, delegated } : { actorIds };
    const answer = unpackRefresh(validated(refreshResponseSchema, await this.post('/v1/broker/sessions', body), 'sessions'));
    if (!answer) throw new SidecarUnavailableError('sessions: a grant refers to an entry its answer does not hold');
    return answer;
  }

  /** Opens the change feed (text/event-stream); the caller reads and closes it. */
  async openChangeFeed(signal: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}/v1/broker/changes`, { headers: { authorization: `Bearer ${this.token}` }, signal });
    } catch (err) {
      throw new SidecarUnavailableError(`change feed: ${(err as Error).message}`);
    }
    if (!res.ok || !res.body) throw new SidecarUnavailableError(`change feed: HTTP ${res.status}`);
    return res.body;
  }

  /**
   * One POST over a kept-alive connection. node:http rather than fetch: a CONNECT costs one of these, and
   * fetch's streams, abort signals and DOM exceptions cost the broker more CPU than the call itself.
   */
  private post(path: string, body: unknown): Promise<unknown> {
    const payload = Buffer.from(JSON.stringify(body));
    const url = new URL(path, this.baseUrl);
    return new Promise((resolve, reject) => {
      const fail = (message: string) => reject(new SidecarUnavailableError(`${path}: ${message}`));
      const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
        {
          agent: url.protocol === 'https:' ? this.httpsAgent : this.httpAgent,
          hostname: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json', 'content-length': payload.length },
          timeout: this.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => fail(err.message));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if (res.statusCode !== 200) return fail(`HTTP ${res.statusCode} ${text.slice(0, 200)}`);
            try {
              resolve(JSON.parse(text));
            } catch {
              fail('answer is not JSON');
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', (err) => fail(err.message));
      req.end(payload);
    });
  }

  close(): void {
    if (this.connectWindowTimer) clearTimeout(this.connectWindowTimer);
    this.connectWindowTimer = null;
    for (const p of this.pendingConnects.splice(0)) p.reject(new SidecarUnavailableError('connect: the broker is stopping'));
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
