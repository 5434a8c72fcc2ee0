/**
 * Small helpers for the fault-injection tests (test/faults.test.ts): a cleanup list that stops every process
 * even when a test fails, raw JSON HTTP calls (status + body, never a throw), polling, percentiles and the
 * resident memory of a child process.
 */
import { readFileSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';

/** Things to stop in afterAll, newest first; each stop is awaited and its failure ignored. */
export class Cleanup {
  private readonly stops: Array<() => Promise<unknown>> = [];

  add<T extends { stop(): Promise<unknown> }>(handle: T): T {
    this.stops.push(() => handle.stop());
    return handle;
  }

  defer(fn: () => Promise<unknown>): void {
    this.stops.push(fn);
  }

  async run(): Promise<void> {
    while (this.stops.length > 0) {
      const fn = this.stops.pop()!;
      await Promise.race([fn().catch(() => undefined), new Promise((r) => setTimeout(r, 10_000))]);
    }
  }
}

export interface JsonResponse {
  status: number;
  body: unknown;
  contentType: string;
}

/** One HTTP call with a JSON body; resolves with status and parsed body (status 0 when unreachable). */
export async function http(method: string, url: string, token: string | null, body?: unknown, timeoutMs = 5_000): Promise<JsonResponse> {
  try {
    const res = await fetch(url, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON: keep the text */
    }
    return { status: res.status, body: parsed, contentType: res.headers.get('content-type') ?? '' };
  } catch (err) {
    return { status: 0, body: String((err as Error).message), contentType: '' };
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Calls `fn` every `intervalMs` until it returns a truthy value or `timeoutMs` passed; returns the last value. */
export async function pollUntil<T>(fn: () => Promise<T> | T, timeoutMs: number, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = await fn();
  while (!last && Date.now() < deadline) {
    await sleep(intervalMs);
    last = await fn();
  }
  return last;
}

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}

/** Resident set size of a process in MiB (VmRSS from /proc/<pid>/status), NaN when unreadable. */
export function rssMiB(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** The `{error: {code, message, details}}` body of the API, or null when the body is not in that format. */
export function errorBody(body: unknown): { code: string; message: string; details: unknown[] } | null {
  const e = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | null)?.error;
  if (!e || typeof e.code !== 'string' || typeof e.message !== 'string' || !Array.isArray(e.details)) return null;
  return { code: e.code, message: e.message, details: e.details };
}

/**
 * A bare mqtt.js client for load tests (no message log kept): resolves once CONNACK 0 arrived, rejects
 * otherwise. `onMessage` sees every message.
 */
export function connectLean(url: string, username: string, password: string, clientId: string, onMessage: (topic: string, payload: Buffer) => void): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 30_000, keepalive: 120, username, password, clientId, clean: true });
    client.on('message', onMessage);
    let settled = false;
    client.once('connect', () => {
      settled = true;
      client.removeAllListeners('error');
      client.on('error', () => undefined);
      resolve(client);
    });
    client.once('error', (err) => {
      if (settled) return;
      settled = true;
      client.end(true);
      reject(err);
    });
    client.once('close', () => {
      if (settled) return;
      settled = true;
      reject(new Error(`connection of ${clientId} closed before CONNACK`));
    });
  });
}

/** Starts several processes at once; every one that started is registered for cleanup even if another failed. */
export async function startAll<T extends { stop(): Promise<unknown> }>(cleanup: Cleanup, starts: Array<Promise<T>>): Promise<T[]> {
  const settled = await Promise.allSettled(starts);
  for (const s of settled) if (s.status === 'fulfilled') cleanup.add(s.value);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}

/** The value of one unlabelled sample in a Prometheus text exposition (NaN when absent). */
export function promValue(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{\\})? ([0-9.eE+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}
