/**
 * The load shape most users produce: one publisher and one subscriber written with mqtt.js, the publisher
 * awaiting each QoS 0 `publishAsync` in turn (it resolves once the packet is written), at full speed.
 * Config as JSON in LOADGEN_CONFIG; prints {event:'ready'}, waits for "start", then after the warm-up and the
 * measured window prints {event:'result', delivered, published, seconds, cpuPercent}.
 */
import mqtt from 'mqtt';

interface Config {
  port: number;
  pub: { clientId: string; username?: string; password?: string };
  sub: { clientId: string; username?: string; password?: string };
  topic: string;
  filter: string;
  durationMs: number;
  warmupMs: number;
}
const c = JSON.parse(process.env.LOADGEN_CONFIG ?? '{}') as Config;
const emit = (e: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(e)}\n`);
const options = (who: Config['pub']) => ({ port: c.port, host: '127.0.0.1', protocolVersion: 4 as const, clean: true, reconnectPeriod: 0, keepalive: 0, clientId: who.clientId, ...(who.username ? { username: who.username, password: who.password } : {}) });

const sub = await mqtt.connectAsync(options(c.sub));
let received = 0;
sub.on('message', () => received++);
await sub.subscribeAsync(c.filter, { qos: 0 });
const pub = await mqtt.connectAsync(options(c.pub));
emit({ event: 'ready' });
await new Promise<void>((resolve) => {
  process.stdin.on('data', (d) => {
    if (d.toString().includes('start')) resolve();
  });
});

let running = true;
let published = 0;
const payload = Buffer.alloc(16);
const loop = (async () => {
  while (running) {
    await pub.publishAsync(c.topic, payload, { qos: 0 });
    published++;
  }
})();
await new Promise((r) => setTimeout(r, c.warmupMs));
const received0 = received;
const published0 = published;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await new Promise((r) => setTimeout(r, c.durationMs));
const seconds = (performance.now() - t0) / 1000;
const delivered = received - received0;
const cpu = process.cpuUsage(cpu0);
running = false;
await loop;
emit({ event: 'result', delivered, published: published - published0, seconds, cpuPercent: ((cpu.user + cpu.system) / 1000 / (seconds * 1000)) * 100 });
// The subscriber stays until the broker's backlog has reached it (no message for 200 ms): leaving with
// thousands of messages queued in plain Aedes' emitter overflowed its stack (see broker/aedes-internals.ts,
// boundEmitterRecursion), which ended the baseline process mid-run.
await pub.endAsync(true).catch(() => undefined);
for (let last = -1; last !== received; ) {
  last = received;
  await new Promise((r) => setTimeout(r, 200));
}
await sub.endAsync(true).catch(() => undefined);
process.stdout.write('', () => process.exit(0));
