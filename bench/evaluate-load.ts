/**
 * HTTP load for `POST /v1/evaluate`: keep-alive connections, `concurrency` requests in flight, for
 * `durationMs` after a warm-up. Config in LOADGEN_CONFIG_FILE; prints one JSON line with the count, the
 * seconds and a sorted sample of latencies (ms).
 *
 * Real HTTP/1.1 over real sockets, one request in flight per connection (no pipelining), but written on
 * `net` sockets with the requests' bytes prepared once and only the status line and Content-Length of an
 * answer read. Node's `http` client cost ~50 µs of CPU per request, more than half of what the sidecar spent
 * answering it; on a 2-core machine that client competed with the sidecar for the CPU and its own event-loop
 * delays showed as latency: a trivial server that answers a constant measured p99 4.5–6 ms at 10,000/s
 * through it. What a load tool like wrk measures is the server; so does this.
 */
import { connect, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';

interface Config {
  url: string;
  token: string;
  bodies: unknown[];
  concurrency: number;
  durationMs: number;
  warmupMs: number;
  /** Open loop at this many requests per second (at most `concurrency` in flight) instead of closed loop. */
  ratePerSecond?: number;
}
const c = JSON.parse(readFileSync(process.env.LOADGEN_CONFIG_FILE!, 'utf8')) as Config;
const target = new URL('/v1/evaluate', c.url);
const requests = c.bodies.map((b) => {
  const body = Buffer.from(JSON.stringify(b));
  const head = `POST ${target.pathname} HTTP/1.1\r\nhost: ${target.host}\r\nauthorization: Bearer ${c.token}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: keep-alive\r\n\r\n`;
  return Buffer.concat([Buffer.from(head), body]);
});
let next = 0;
const HEADER_END = Buffer.from('\r\n\r\n');

/** One keep-alive connection: `send()` resolves with the answer's status once its whole body has arrived. */
class Connection {
  private readonly socket: Socket;
  private buffered: Buffer = Buffer.alloc(0);
  private waiting: ((status: number) => void) | null = null;
  private readonly ready: Promise<void>;

  constructor() {
    this.socket = connect(Number(target.port), target.hostname);
    this.socket.setNoDelay(true);
    this.ready = new Promise((resolve, reject) => {
      this.socket.once('connect', resolve);
      this.socket.once('error', reject);
    });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', () => this.settle(0));
    this.socket.on('close', () => this.settle(0));
  }

  async send(): Promise<number> {
    await this.ready;
    if (this.socket.destroyed) return 0;
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.socket.write(requests[next++ % requests.length]!);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const end = this.buffered.indexOf(HEADER_END);
    if (end < 0) return;
    const head = this.buffered.toString('latin1', 0, end);
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    const total = end + HEADER_END.length + length;
    if (this.buffered.length < total) return;
    const status = Number(head.slice(9, 12));
    this.buffered = this.buffered.subarray(total);
    this.settle(status);
  }

  private settle(status: number): void {
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.(status);
  }
}

const connections = Array.from({ length: c.concurrency }, () => new Connection());
const idle = [...connections];

let measuring = false;
let running = true;
let count = 0;
let errors = 0;
const latencies: number[] = [];

function record(status: number, started: number): void {
  if (!measuring) return;
  if (status !== 200) errors++;
  count++;
  latencies.push(performance.now() - started);
}

async function worker(connection: Connection) {
  while (running) {
    const t = performance.now();
    record(await connection.send(), t);
  }
}

let skipped = 0;
/** Open loop: a tick every millisecond sends what the rate owes, each request on its own connection. */
async function paced(rate: number) {
  let owed = 0;
  let last = performance.now();
  while (running) {
    const now = performance.now();
    owed += ((now - last) * rate) / 1000;
    last = now;
    for (; owed >= 1; owed--) {
      const connection = idle.pop();
      if (!connection) {
        if (measuring) skipped++;
        continue;
      }
      const t = performance.now();
      void connection.send().then((status) => {
        idle.push(connection);
        record(status, t);
      });
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  while (idle.length < connections.length) await new Promise((r) => setTimeout(r, 5));
}

const workers = c.ratePerSecond ? [paced(c.ratePerSecond)] : connections.map(worker);
await new Promise((r) => setTimeout(r, c.warmupMs));
measuring = true;
const t0 = performance.now();
await new Promise((r) => setTimeout(r, c.durationMs));
measuring = false;
const seconds = (performance.now() - t0) / 1000;
running = false;
await Promise.all(workers);
for (const connection of connections) connection.close();
latencies.sort((a, b) => a - b);
const step = Math.max(1, Math.floor(latencies.length / 20_000));
process.stdout.write(`${JSON.stringify({ count, errors, skipped, seconds, latencies: latencies.filter((_, i) => i % step === 0) })}\n`, () => process.exit(0));
