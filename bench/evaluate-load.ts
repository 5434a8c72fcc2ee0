/**
 * HTTP load for `POST /v1/evaluate`: keep-alive connections, `concurrency` requests in flight, for
 * `durationMs` after a warm-up. Config in LOADGEN_CONFIG_FILE; prints one JSON line with the count, the
 * seconds and a sorted sample of latencies (ms).
 */
import { Agent, request } from 'node:http';
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
const agent = new Agent({ keepAlive: true, maxSockets: c.concurrency });
const target = new URL('/v1/evaluate', c.url);
const payloads = c.bodies.map((b) => Buffer.from(JSON.stringify(b)));

function once(payload: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { agent, host: target.hostname, port: target.port, path: target.pathname, method: 'POST', headers: { authorization: `Bearer ${c.token}`, 'content-type': 'application/json', 'content-length': payload.length } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

let measuring = false;
let running = true;
let count = 0;
let errors = 0;
const latencies: number[] = [];
let next = 0;
async function worker() {
  while (running) {
    const t = performance.now();
    const status = await once(payloads[next++ % payloads.length]!).catch(() => 0);
    if (!measuring) continue;
    if (status !== 200) errors++;
    count++;
    latencies.push(performance.now() - t);
  }
}
let inFlight = 0;
let skipped = 0;
/** Open loop: a tick every millisecond sends what the rate owes, each request on its own. */
async function paced(rate: number) {
  let owed = 0;
  let last = performance.now();
  while (running) {
    const now = performance.now();
    owed += ((now - last) * rate) / 1000;
    last = now;
    for (; owed >= 1; owed--) {
      if (inFlight >= c.concurrency) {
        if (measuring) skipped++;
        continue;
      }
      inFlight++;
      const t = performance.now();
      void once(payloads[next++ % payloads.length]!)
        .catch(() => 0)
        .then((status) => {
          inFlight--;
          if (!measuring) return;
          if (status !== 200) errors++;
          count++;
          latencies.push(performance.now() - t);
        });
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  while (inFlight > 0) await new Promise((r) => setTimeout(r, 5));
}
const workers = c.ratePerSecond ? [paced(c.ratePerSecond)] : Array.from({ length: c.concurrency }, worker);
await new Promise((r) => setTimeout(r, c.warmupMs));
measuring = true;
const t0 = performance.now();
await new Promise((r) => setTimeout(r, c.durationMs));
measuring = false;
const seconds = (performance.now() - t0) / 1000;
running = false;
await Promise.all(workers);
latencies.sort((a, b) => a - b);
const step = Math.max(1, Math.floor(latencies.length / 20_000));
process.stdout.write(`${JSON.stringify({ count, errors, skipped, seconds, latencies: latencies.filter((_, i) => i % step === 0) })}\n`, () => process.exit(0));
