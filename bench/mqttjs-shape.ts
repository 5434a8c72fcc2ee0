import { cpuMsOf, sleep, spawnJson } from './lib.ts';
import type { PubSubPair } from './loadgen.ts';

export interface MqttJsResult {
  deliveredPerSecond: number;
  published: number;
  delivered: number;
  /** CPU of the mqtt.js process (publisher and subscriber share it) and of the broker, 100 % = one core. */
  clientCpuPercent: number;
  brokerCpuPercent: number;
}

/** One mqtt.js publisher and one mqtt.js subscriber (bench/mqttjs-load.ts), QoS 0 at full speed, on one pair. */
export async function runMqttJs(port: number, pair: PubSubPair, options: { durationMs: number; warmupMs: number; brokerPids: number[] }): Promise<MqttJsResult> {
  if (pair.topics.kind !== 'cycle') throw new Error('the mqtt.js shape publishes one topic');
  const proc = spawnJson('bench/mqttjs-load.ts', {
    LOADGEN_CONFIG: JSON.stringify({ port, pub: pair.pub, sub: pair.sub, topic: pair.topics.topics[0], filter: pair.filter, durationMs: options.durationMs, warmupMs: options.warmupMs }),
  });
  try {
    const ready = await proc.next((l) => l.event === 'ready' || l.event === 'error');
    if (ready.event === 'error') throw new Error(`mqtt.js load: ${String(ready.message)}`);
    proc.send('start');
    const result = proc.next((l) => l.event === 'result', options.durationMs + options.warmupMs + 60_000);
    await sleep(options.warmupMs);
    const brokerCpu0 = options.brokerPids.reduce((n, pid) => n + cpuMsOf(pid), 0);
    const wall0 = Date.now();
    await sleep(options.durationMs - 200);
    const brokerCpuPercent = ((options.brokerPids.reduce((n, pid) => n + cpuMsOf(pid), 0) - brokerCpu0) / (Date.now() - wall0)) * 100;
    const r = await result;
    return {
      deliveredPerSecond: (r.delivered as number) / (r.seconds as number),
      published: r.published as number,
      delivered: r.delivered as number,
      clientCpuPercent: r.cpuPercent as number,
      brokerCpuPercent,
    };
  } finally {
    await proc.stop();
  }
}
