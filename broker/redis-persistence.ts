import { createRequire } from 'node:module';
import { Cluster, type Redis } from 'ioredis';
import type { RedisConnection } from '../shared/redis-connection.ts';
import { adaptRetainedStreams, settleWillDeletion } from './aedes-internals.ts';

const require = createRequire(import.meta.url);
const msgpack = require('msgpack-lite') as { decode(buf: Buffer): unknown };
const { QlobberTrue } = require('qlobber') as { QlobberTrue: new (opts: object) => { add(p: string): void; test(t: string): boolean } };

type Client = { id: string };
type Sub = { topic: string; qos: number };
interface AsyncRedisPersistence {
  addSubscriptions(client: Client, subs: Sub[]): Promise<unknown>;
  removeSubscriptions(client: Client, topics: string[]): Promise<unknown>;
  createRetainedStreamCombi(patterns: string[]): AsyncIterable<unknown>;
}

/** How long a subscription change may wait for its broadcast before it fails (the client then reconnects). */
const BROADCAST_TIMEOUT_MS = 10_000;

/**
 * aedes-persistence-redis (sessions, QoS 1/2 queues, retained messages, wills) on a connection made by
 * shared/redis-connection.ts, whose keyPrefix puts every key under REDIS_BROKER_PREFIX. On Redis Cluster it
 * runs in the package's cluster mode (retained messages as one key per topic, no multi-key commands), so
 * sessions and retained messages spread over the nodes.
 *
 * Four adaptations, each for a defect found in use:
 * - Subscription changes of one client run one at a time. The package's broadcast waiter is keyed by client
 *   and first filter, and Aedes calls addSubscriptions once per filter of a SUBSCRIBE with the same list, so
 *   two concurrent calls overwrote each other's waiter and the SUBACK never came (`mosquitto_sub -c -t a
 *   -t b`). Each change also fails after BROADCAST_TIMEOUT_MS instead of hanging.
 * - The retained lookup is adapted to what Aedes expects (adaptRetainedStreams in aedes-internals.ts).
 * - A will deletion that fails during an outage cannot end the process (settleWillDeletion, same file).
 * - On Cluster, retained wildcard lookups scan each master for keys under the prefix (the package's scan
 *   pattern knows no key prefix and would find nothing).
 */
export function createRedisPersistence(conn: RedisConnection, keyPrefix: string): unknown {
  const Persistence = require('aedes-persistence-redis/asyncPersistence.js') as new (opts: object) => AsyncRedisPersistence;
  const cluster = conn instanceof Cluster;
  // `cluster: true` (not an array of nodes) selects the package's cluster mode on the connection given.
  const persistence = new Persistence(cluster ? { conn, cluster: true } : { conn });

  const chains = new Map<string, Promise<unknown>>();
  const oneAtATime = <A extends unknown[]>(fn: (client: Client, ...args: A) => Promise<unknown>) =>
    (client: Client, ...args: A): Promise<unknown> => {
      const previous = chains.get(client.id) ?? Promise.resolve();
      const run = previous.catch(() => undefined).then(() => withTimeout(fn(client, ...args), BROADCAST_TIMEOUT_MS, 'subscription change not confirmed in time'));
      chains.set(client.id, run);
      const cleanup = () => {
        if (chains.get(client.id) === run) chains.delete(client.id);
      };
      run.then(cleanup, cleanup);
      return run;
    };
  persistence.addSubscriptions = oneAtATime(persistence.addSubscriptions.bind(persistence));
  persistence.removeSubscriptions = oneAtATime(persistence.removeSubscriptions.bind(persistence));

  if (cluster) persistence.createRetainedStreamCombi = (patterns: string[]) => clusterRetained(conn, keyPrefix, patterns);
  adaptRetainedStreams(persistence);
  settleWillDeletion(persistence);
  return persistence;
}

/** `p`, or a rejection with `message` once `ms` have passed without it settling. */
function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const RETAINED = 'retained:';
const retainedKey = (topic: string) => RETAINED + encodeURIComponent(topic);
const globEscape = (s: string) => s.replace(/[*?[\]\\]/g, '\\$&');

/** How long one SCAN step on one master may take before the lookup gives that master up. */
const SCAN_STEP_TIMEOUT_MS = 2_000;

/**
 * The keys matching `match` on one master, a SCAN step at a time. A master that is not connected is skipped,
 * and one whose step fails or does not answer in time is given up: a killed master stays in the client's list until
 * its slot map is refreshed, and its connection queues commands until it comes back, so a retained lookup
 * hung on it for as long as it was gone (every new subscription's retained messages with it). Once the
 * failover is done its keys are served by the promoted replica, which is another master of the list.
 */
async function* scanMaster(node: Redis, match: string): AsyncGenerator<string[]> {
  if (node.status !== 'ready') return;
  let cursor = '0';
  do {
    const step = await withTimeout(node.scan(cursor, 'MATCH', match, 'COUNT', 1000), SCAN_STEP_TIMEOUT_MS, 'SCAN step not answered in time').catch(() => null);
    if (step === null) return;
    cursor = step[0];
    yield step[1];
  } while (cursor !== '0');
}

/** Retained messages matching `patterns` on a Cluster: the package's key layout (`retained:<topic>`), under the prefix. */
async function* clusterRetained(conn: Cluster, keyPrefix: string, patterns: string[]): AsyncGenerator<unknown> {
  const sent = new Set<string>();
  const matcher = new QlobberTrue({ separator: '/', wildcard_one: '+', wildcard_some: '#', match_empty_levels: true });
  const literalHeads: string[] = [];
  for (const p of patterns) {
    const w = p.search(/[+#]/);
    if (w === -1) {
      const value = await conn.getBuffer(retainedKey(p));
      if (value && !sent.has(p)) {
        sent.add(p);
        yield msgpack.decode(value);
      }
    } else {
      matcher.add(p);
      literalHeads.push(p.slice(0, w));
    }
  }
  if (literalHeads.length === 0) return;
  let head = literalHeads[0]!;
  for (const h of literalHeads) while (!h.startsWith(head)) head = head.slice(0, -1);
  const match = globEscape(keyPrefix + RETAINED + encodeURIComponent(head)) + '*';
  const strip = (keyPrefix + RETAINED).length;
  for (const node of conn.nodes('master')) {
    for await (const keys of scanMaster(node, match)) {
      for (const key of keys) {
        const topic = decodeURIComponent(key.slice(strip));
        if (sent.has(topic) || !matcher.test(topic)) continue;
        const value = await conn.getBuffer(retainedKey(topic));
        if (!value) continue;
        sent.add(topic);
        yield msgpack.decode(value);
      }
    }
  }
}
