/**
 * Load generator process for `npm run bench`: raw TCP sockets and mqtt-packet, no MQTT client library, so
 * that it costs far less per message than the broker it drives. Several of these run side by side.
 *
 * Protocol with the orchestrator (bench/run.ts): config as JSON in LOADGEN_CONFIG; the process prints one
 * JSON line per event on stdout ({event:'ready'} once every client is connected and subscribed, then
 * {event:'result', ...}); it starts the measured phase when it reads "start\n" on stdin and ends it after
 * durationMs (pubsub) or when it reads "stop\n" (connect: connections are held until then). `hold` connects its
 * clients, holds them, and prints {event:'closed', clientId, at} when the broker closes one (revocation
 * latency under load, bench/write-cost.ts).
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import mqttPacket from 'mqtt-packet';

export interface Credentials {
  clientId: string;
  username?: string;
  password?: string;
}

export interface PubSubPair {
  pub: Credentials;
  sub: Credentials;
  /** What the publisher writes: the same topics in turn, or a topic never used before on every publish. */
  topics: TopicPlan;
  filter: string;
}

/**
 * `cycle`: the listed topics in turn (one topic, or many distinct ones). `unique`: every publish a topic never
 * used before, `<prefix>/<uuid><suffix>`, the prefixes taken in turn.
 */
export type TopicPlan = { kind: 'cycle'; topics: string[] } | { kind: 'unique'; prefixes: string[]; suffix: string };

export type LoadgenConfig =
  | { mode: 'pubsub'; port: number; pairs: PubSubPair[]; durationMs: number; ratePerPublisher: number | null; warmupMs: number }
  | { mode: 'connect'; port: number; clients: Credentials[]; concurrency: number }
  | { mode: 'hold'; port: number; clients: Credentials[]; concurrency: number };

// Large configurations (10,000 credentials) come in a file: the environment has a size limit.
const config = JSON.parse(process.env.LOADGEN_CONFIG_FILE ? readFileSync(process.env.LOADGEN_CONFIG_FILE, 'utf8') : (process.env.LOADGEN_CONFIG ?? '{}')) as LoadgenConfig;
const emit = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`);
const now = () => performance.timeOrigin + performance.now();

function waitForLine(expected: string): Promise<void> {
  return new Promise((resolve) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      if (buf.split('\n').includes(expected)) {
        process.stdin.off('data', onData);
        resolve();
      }
    };
    process.stdin.on('data', onData);
  });
}

/** Opens a socket, sends CONNECT, resolves on CONNACK 0 (rejects with the code otherwise). */
function mqttConnect(port: number, c: Credentials): Promise<{ socket: Socket; parser: ReturnType<typeof mqttPacket.parser> }> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ port, host: '127.0.0.1' });
    socket.setNoDelay(true);
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    const onData = (d: Buffer) => parser.parse(d);
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('closed before CONNACK')));
    parser.once('packet', (p: { cmd: string; returnCode?: number }) => {
      if (p.cmd !== 'connack' || p.returnCode !== 0) {
        socket.destroy();
        return reject(new Error(`CONNACK ${p.returnCode}`));
      }
      socket.off('data', onData);
      socket.removeAllListeners('close');
      socket.removeAllListeners('error');
      socket.on('error', () => undefined);
      resolve({ socket, parser });
    });
    socket.once('connect', () => {
      socket.write(
        mqttPacket.generate({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clean: true,
          clientId: c.clientId,
          keepalive: 0,
          ...(c.username ? { username: c.username } : {}),
          ...(c.password ? { password: Buffer.from(c.password) } : {}),
        } as never),
      );
    });
  });
}

function subscribe(socket: Socket, filter: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    const onData = (d: Buffer) => parser.parse(d);
    socket.on('data', onData);
    parser.once('packet', (p: { cmd: string; granted?: number[] }) => {
      socket.off('data', onData);
      if (p.cmd === 'suback' && p.granted?.[0] !== 128) resolve();
      else reject(new Error(`SUBACK ${JSON.stringify(p.granted)} for ${filter}`));
    });
    socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos: 0 }] } as never));
  });
}

/** Counts QoS 0 PUBLISH packets and their latency (a float64 send time at the start of the payload). */
class Receiver {
  count = 0;
  /** Every message received, measured or not (flow control of the paired publisher). */
  total = 0;
  private wake: (() => void) | null = null;
  latencies: number[] = [];
  private pending: Buffer | null = null;
  measuring = false;
  constructor(socket: Socket) {
    socket.on('data', (d: Buffer) => this.onData(d));
  }
  private onData(chunk: Buffer) {
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    let offset = 0;
    const t = now();
    while (offset + 2 <= buf.length) {
      // Remaining length: 1–4 bytes, 7 bits each.
      let len = 0;
      let mul = 1;
      let i = offset + 1;
      let complete = false;
      for (let k = 0; k < 4 && i < buf.length; k++) {
        const byte = buf[i++]!;
        len += (byte & 127) * mul;
        mul *= 128;
        if ((byte & 128) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete || i + len > buf.length) break;
      if (buf[offset]! >> 4 === 3) {
        const topicLen = buf.readUInt16BE(i);
        const payloadAt = i + 2 + topicLen + ((buf[offset]! >> 1) & 3 ? 2 : 0);
        this.total++;
        if (this.measuring) {
          this.count++;
          if (payloadAt + 8 <= i + len && (this.count & 7) === 0) this.latencies.push(t - buf.readDoubleBE(payloadAt));
        }
      }
      offset = i + len;
    }
    this.pending = offset < buf.length ? Buffer.from(buf.subarray(offset)) : null;
    if (this.wake) {
      const w = this.wake;
      this.wake = null;
      w();
    }
  }
  /** Resolves at the next chunk received, or after `ms` (a lost QoS 0 message must not stall the window). */
  progress(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve(false);
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }
}

/** Messages a publisher may have in flight (sent, not yet received by its paired subscriber). */
const WINDOW = Number(process.env.LOADGEN_WINDOW ?? 50);

const PAYLOAD_BYTES = 16;

/** A QoS 0 PUBLISH with a 16-byte payload (the send time goes in its first 8 bytes), encoded by hand. */
function publishPacket(topic: string): Buffer {
  const topicBytes = Buffer.byteLength(topic);
  const remaining = 2 + topicBytes + PAYLOAD_BYTES;
  const lengthBytes = remaining < 128 ? 1 : remaining < 16_384 ? 2 : 3;
  const packet = Buffer.alloc(1 + lengthBytes + remaining);
  packet[0] = 0x30;
  let r = remaining;
  for (let i = 1; i <= lengthBytes; i++) {
    packet[i] = (r & 127) | (i < lengthBytes ? 128 : 0);
    r >>= 7;
  }
  packet.writeUInt16BE(topicBytes, 1 + lengthBytes);
  packet.write(topic, 3 + lengthBytes);
  return packet;
}

class Publisher {
  sent = 0;
  private readonly cycle: Buffer[] | null;
  private next = 0;
  constructor(
    private readonly socket: Socket,
    private readonly plan: TopicPlan,
  ) {
    this.cycle = plan.kind === 'cycle' ? plan.topics.map(publishPacket) : null;
  }
  private packet(): Buffer {
    const n = this.next++;
    if (this.cycle) return Buffer.from(this.cycle[n % this.cycle.length]!);
    const plan = this.plan as Extract<TopicPlan, { kind: 'unique' }>;
    return publishPacket(`${plan.prefixes[n % plan.prefixes.length]}/${randomUUID()}${plan.suffix}`);
  }
  /** Writes `n` packets in one socket write, stamped with the send time; false when the socket is full. */
  send(n: number): boolean {
    const parts: Buffer[] = [];
    const t = now();
    for (let k = 0; k < n; k++) {
      const p = this.packet();
      p.writeDoubleBE(t, p.length - PAYLOAD_BYTES);
      parts.push(p);
    }
    this.sent += n;
    return this.socket.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
  }
  drain(): Promise<void> {
    return new Promise((r) => this.socket.once('drain', () => r()));
  }
}

async function runPubSub(c: Extract<LoadgenConfig, { mode: 'pubsub' }>) {
  const receivers: Receiver[] = [];
  const publishers: Publisher[] = [];
  const sockets: Socket[] = [];
  for (const pair of c.pairs) {
    const sub = await mqttConnect(c.port, pair.sub);
    await subscribe(sub.socket, pair.filter);
    receivers.push(new Receiver(sub.socket));
    const pub = await mqttConnect(c.port, pair.pub);
    publishers.push(new Publisher(pub.socket, pair.topics));
    sockets.push(sub.socket, pub.socket);
  }
  emit({ event: 'ready' });
  await waitForLine('start');

  let running = true;
  const batch = c.ratePerPublisher ? 1 : 32;
  const loops = publishers.map(async (p): Promise<void> => {
    if (c.ratePerPublisher) {
      // Fixed rate: a tick every 10 ms sends this publisher's share, for latency without saturation. A socket
      // the broker stops reading (per-session rate limit: backpressure) is waited for, as a device's TCP stack
      // would block it: writing on regardless would only queue the offered load in this process's memory and
      // burn CPU the broker and the other tenants share on a small machine.
      const perTick = c.ratePerPublisher / 100;
      let owed = 0;
      while (running) {
        owed += perTick;
        const n = Math.floor(owed);
        owed -= n;
        if (n > 0 && !p.send(n)) {
          await p.drain();
          owed = 0;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      return;
    }
    // Maximum rate with a bounded window: keeps the broker saturated without building queues that would
    // only measure buffer sizes (the publisher and its subscriber live in this process, so the number of
    // messages in flight is known exactly).
    const r = receivers[publishers.indexOf(p)]!;
    let forgiven = 0;
    while (running) {
      if (p.sent - r.total - forgiven > WINDOW) {
        // No message for 1 s with a full window: count what is outstanding as lost and go on.
        if (!(await r.progress(1_000))) forgiven = p.sent - r.total;
        continue;
      }
      if (!p.send(batch)) await p.drain();
      else await new Promise((res) => setImmediate(res));
    }
  });
  // Warm-up: let caches, JIT and queues settle, then measure.
  await new Promise((r) => setTimeout(r, c.warmupMs));
  for (const r of receivers) r.measuring = true;
  const sentAtStart = publishers.reduce((n, p) => n + p.sent, 0);
  const t0 = now();
  const cpuAtStart = process.cpuUsage();
  await new Promise((r) => setTimeout(r, c.durationMs));
  for (const r of receivers) r.measuring = false;
  const t1 = now();
  running = false;
  // Publishers may be parked on a full socket behind the broker's backlog; the figures are taken, so their
  // sockets are simply destroyed below instead of waiting for the backlog to drain.
  void loops;
  const delivered = receivers.reduce((n, r) => n + r.count, 0);
  const latencies = receivers.flatMap((r) => r.latencies);
  const cpu = process.cpuUsage(cpuAtStart);
  emit({
    event: 'result',
    cpuPercent: ((cpu.user + cpu.system) / 1000 / (t1 - t0)) * 100,
    delivered,
    published: publishers.reduce((n, p) => n + p.sent, 0) - sentAtStart,
    seconds: (t1 - t0) / 1000,
    latencies: sampleSorted(latencies, 20_000),
  });
  for (const s of sockets) s.destroy();
}

async function runConnect(c: Extract<LoadgenConfig, { mode: 'connect' }>) {
  emit({ event: 'ready' });
  await waitForLine('start');
  const sockets: Socket[] = [];
  let failed = 0;
  let next = 0;
  const t0 = now();
  const cpuAtStart = process.cpuUsage();
  const latencies: number[] = [];
  await Promise.all(
    Array.from({ length: c.concurrency }, async () => {
      while (next < c.clients.length) {
        const cred = c.clients[next++]!;
        const started = now();
        try {
          const { socket } = await mqttConnect(c.port, cred);
          latencies.push(now() - started);
          sockets.push(socket);
        } catch {
          failed++;
        }
      }
    }),
  );
  const t1 = now();
  const cpu = process.cpuUsage(cpuAtStart);
  emit({ event: 'result', connected: sockets.length, failed, seconds: (t1 - t0) / 1000, cpuPercent: ((cpu.user + cpu.system) / 1000 / (t1 - t0)) * 100, latencies: sampleSorted(latencies, 20_000) });
  await waitForLine('stop');
  for (const s of sockets) s.destroy();
  emit({ event: 'stopped' });
}

/** Connects every client, holds the connections, and reports each one the broker closes (with when). */
async function runHold(c: Extract<LoadgenConfig, { mode: 'hold' }>) {
  emit({ event: 'ready' });
  await waitForLine('start');
  const sockets: Socket[] = [];
  let failed = 0;
  let next = 0;
  let stopping = false;
  await Promise.all(
    Array.from({ length: c.concurrency }, async () => {
      while (next < c.clients.length) {
        const cred = c.clients[next++]!;
        try {
          const { socket } = await mqttConnect(c.port, cred);
          socket.resume();
          socket.once('close', () => {
            if (!stopping) emit({ event: 'closed', clientId: cred.clientId, at: now() });
          });
          sockets.push(socket);
        } catch {
          failed++;
        }
      }
    }),
  );
  emit({ event: 'held', connected: sockets.length, failed });
  await waitForLine('stop');
  stopping = true;
  for (const s of sockets) s.destroy();
  emit({ event: 'stopped' });
}

function sampleSorted(values: number[], max: number): number[] {
  const step = Math.max(1, Math.floor(values.length / max));
  const out: number[] = [];
  for (let i = 0; i < values.length; i += step) out.push(values[i]!);
  return out.sort((a, b) => a - b);
}

const run = config.mode === 'pubsub' ? runPubSub(config) : config.mode === 'hold' ? runHold(config) : runConnect(config);
// Exit only once stdout is flushed: it is a pipe, and process.exit would drop a pending result line.
const exit = (code: number) => process.stdout.write('', () => process.exit(code));
run.then(
  () => exit(0),
  (err: unknown) => {
    emit({ event: 'error', message: String((err as Error)?.message ?? err) });
    exit(1);
  },
);
