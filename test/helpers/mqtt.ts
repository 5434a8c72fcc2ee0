import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

export interface Received {
  topic: string;
  payload: string;
  retain: boolean;
  qos: number;
}

export interface TestClient {
  client: MqttClient;
  messages: Received[];
  /** Resolves with the first message matching, or rejects after `timeoutMs`. */
  next(predicate?: (m: Received) => boolean, timeoutMs?: number): Promise<Received>;
  subscribe(filter: string | string[], qos?: 0 | 1 | 2): Promise<number[]>;
  publish(topic: string, payload: string, options?: { qos?: 0 | 1 | 2; retain?: boolean }): Promise<void>;
  /** Resolves when the connection closes (by the broker or the client). */
  closed: Promise<void>;
  end(): Promise<void>;
}

/** Connects a real mqtt.js client (MQTT 3.1.1) and resolves once CONNACK 0 arrived; rejects with `code` otherwise. */
export function connect(url: string, username: string, password: string, options: IClientOptions = {}): Promise<TestClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5_000, username, password, clientId: options.clientId ?? `t-${Math.random().toString(16).slice(2)}`, ...options });
    const messages: Received[] = [];
    const waiters: Array<{ predicate: (m: Received) => boolean; resolve: (m: Received) => void }> = [];
    let closeResolve!: () => void;
    const closed = new Promise<void>((r) => (closeResolve = r));
    // Closed before CONNACK (a server may cut a connection it decided against): fail now, not at a timeout.
    client.on('close', () => {
      closeResolve();
      reject(new Error('connection closed before CONNACK'));
    });
    client.on('message', (topic, payload, packet) => {
      const m = { topic, payload: payload.toString(), retain: packet.retain, qos: packet.qos };
      messages.push(m);
      for (const w of [...waiters]) {
        if (w.predicate(m)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    });
    client.once('error', (err) => {
      client.end(true);
      reject(err);
    });
    client.once('connect', () => {
      client.removeAllListeners('error');
      client.on('error', () => undefined);
      resolve({
        client,
        messages,
        closed,
        next(predicate = () => true, timeoutMs = 3_000) {
          const found = messages.find(predicate);
          if (found) return Promise.resolve(found);
          return new Promise((res, rej) => {
            const w = { predicate, resolve: (m: Received) => (clearTimeout(timer), res(m)) };
            const timer = setTimeout(() => {
              waiters.splice(waiters.indexOf(w), 1);
              rej(new Error(`no matching message within ${timeoutMs} ms (got ${JSON.stringify(messages.map((x) => x.topic))})`));
            }, timeoutMs);
            waiters.push(w);
          });
        },
        subscribe(filter, qos = 0) {
          // mqtt.js reports a SUBACK with a 0x80 code as an error; the codes are what the tests look at.
          return new Promise((res, rej) => {
            client.subscribe(filter, { qos }, (err, granted) => {
              const packet = (err as { packet?: { granted?: number[] } } | undefined)?.packet;
              if (packet?.granted) return res(packet.granted.map((g) => (typeof g === 'number' ? g : (g as { qos: number }).qos)));
              if (err) return rej(err);
              res((granted ?? []).map((g) => g.qos));
            });
          });
        },
        async publish(topic, payload, opts = {}) {
          await client.publishAsync(topic, payload, { qos: opts.qos ?? 0, retain: opts.retain ?? false });
        },
        end: () => client.endAsync(),
      });
    });
  });
}

/** The CONNACK return code a CONNECT gets (0 = accepted; the connection is closed again). */
export async function connackCode(url: string, username: string, password: string, options: IClientOptions = {}): Promise<number> {
  try {
    const c = await connect(url, username, password, options);
    await c.end();
    return 0;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'number') return code;
    throw err;
  }
}

/**
 * What `observer` received before a sentinel: `via` publishes a unique payload on `topic` (QoS 1, so the call
 * returns once the broker acknowledged it) and the observer must receive it (`topic` is one it may receive).
 *
 * This is how a test shows that a message did NOT arrive, without waiting for a while: a message the broker
 * handled before the sentinel reaches the observer before it, so once the sentinel is in, anything that was
 * going to arrive has arrived. "Handled before" holds when the message was published QoS 1 and its PUBACK
 * came back before this call (Aedes sends the PUBACK only once it handed the message to every matching
 * subscription; in Redis mode once it was routed through Redis too, on the same channel when the sentinel is in
 * the same project and app), or when another subscriber has received it (one emit delivers to all of them).
 * Messages to one connection leave the broker in the order they were handed to it.
 */
export async function receivedBefore(observer: TestClient, via: TestClient, topic: string, timeoutMs = 5_000): Promise<Received[]> {
  const payload = `sentinel-${Math.random().toString(16).slice(2)}`;
  await via.publish(topic, payload, { qos: 1 });
  const sentinel = await observer.next((m) => m.payload === payload, timeoutMs);
  return observer.messages.slice(0, observer.messages.indexOf(sentinel));
}

/** Resolves once the broker closed the connection; rejects if it is still open after `timeoutMs`. */
export function closedWithin(c: TestClient, timeoutMs = 3_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the connection is still open after ${timeoutMs} ms`)), timeoutMs);
    void c.closed.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
