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
const workers = Array.from({ length: c.concurrency }, worker);
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
process.stdout.write(`${JSON.stringify({ count, errors, seconds, latencies: latencies.filter((_, i) => i % step === 0) })}\n`, () => process.exit(0));
