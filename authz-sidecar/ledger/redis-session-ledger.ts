import type { RedisConnection } from '../../shared/redis-connection.ts';
import { ScopeGateError } from '../../shared/errors.ts';
import {
  byConnectedAt,
  matchesFilter,
  type DisconnectRequest,
  type HeartbeatResult,
  type ReserveResult,
  type ScopeLimit,
  type SessionEntry,
  type SessionFilter,
  type SessionLedger,
} from './session-ledger.ts';

/**
 * The ledger shared by every sidecar on one Redis. Keys (one hash tag, so the scripts stay on one slot of a
 * Redis Cluster):
 *
 *   <prefix>{ledger}:sessions  hash   sessionId → entry JSON (without state and subscriptions)
 *   <prefix>{ledger}:subs      hash   sessionId → subscriptions JSON
 *   <prefix>{ledger}:state     hash   sessionId → 'connected' (absent: connecting)
 *   <prefix>{ledger}:counts    hash   scopeId → sessions counted under it; `b:<brokerId>` → the broker's
 *   <prefix>{ledger}:brokers   zset   brokerId → lease end (epoch ms)
 *   <prefix>{ledger}:disconnect       pub/sub channel of disconnect requests
 *
 * Every change that touches counts is one Lua script, so a reservation's check and add are atomic across
 * sidecars. The caller's clock is passed in (scripts never read Redis' clock), so tests control it.
 */
const LIB = `
local function removeEntry(id)
  local json = redis.call('HGET', KEYS[1], id)
  if not json then return 0 end
  local e = cjson.decode(json)
  redis.call('HDEL', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  for _, s in ipairs(e.scopePath) do
    if redis.call('HINCRBY', KEYS[4], s, -1) <= 0 then redis.call('HDEL', KEYS[4], s) end
  end
  if redis.call('HINCRBY', KEYS[4], 'b:' .. e.brokerId, -1) <= 0 then redis.call('HDEL', KEYS[4], 'b:' .. e.brokerId) end
  return 1
end
local function putEntry(id, json)
  local e = cjson.decode(json)
  redis.call('HSET', KEYS[1], id, json)
  for _, s in ipairs(e.scopePath) do redis.call('HINCRBY', KEYS[4], s, 1) end
  redis.call('HINCRBY', KEYS[4], 'b:' .. e.brokerId, 1)
end
local function sweep(now)
  local dead = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', '(' .. now)
  if #dead == 0 then return end
  local isDead = {}
  for _, b in ipairs(dead) do
    isDead[b] = true
    redis.call('ZREM', KEYS[5], b)
  end
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    local e = cjson.decode(all[i + 1])
    if isDead[e.brokerId] then removeEntry(all[i]) end
  end
end
`;

/** ARGV: now, leaseMs, sessionId, brokerId, entryJson, nLimits, (scopeId, max)*. → {1} or {0, scopeId, max, count} */
const RESERVE = `${LIB}
local now = tonumber(ARGV[1])
sweep(now)
local n = tonumber(ARGV[6])
for j = 0, n - 1 do
  local scope = ARGV[7 + 2 * j]
  local max = tonumber(ARGV[8 + 2 * j])
  local count = tonumber(redis.call('HGET', KEYS[4], scope) or '0')
  if count >= max then return {0, scope, max, count} end
end
redis.call('ZADD', KEYS[5], 'NX', now + tonumber(ARGV[2]), ARGV[4])
removeEntry(ARGV[3])
putEntry(ARGV[3], ARGV[5])
return {1}
`;

/** ARGV: sessionId → 1 removed, 0 absent */
const RELEASE = `${LIB}
return removeEntry(ARGV[1])
`;

/** ARGV: sessionId, field hash index (2 subs, 3 state), value → 1 set, 0 unknown session */
const UPDATE = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[tonumber(ARGV[2])], ARGV[1], ARGV[3])
return 1
`;

/** ARGV: now, leaseMs, brokerId → {known, sessions} */
const HEARTBEAT = `${LIB}
local now = tonumber(ARGV[1])
sweep(now)
local added = redis.call('ZADD', KEYS[5], now + tonumber(ARGV[2]), ARGV[3])
local n = tonumber(redis.call('HGET', KEYS[4], 'b:' .. ARGV[3]) or '0')
return {1 - added, n}
`;

/** ARGV: now, leaseMs, brokerId, keepReservedSince, n, (sessionId, entryJson, subsJson, state)* */
const SYNC = `${LIB}
local now = tonumber(ARGV[1])
sweep(now)
redis.call('ZADD', KEYS[5], now + tonumber(ARGV[2]), ARGV[3])
local keepSince = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local wanted = {}
for j = 0, n - 1 do wanted[ARGV[6 + 4 * j]] = true end
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local e = cjson.decode(all[i + 1])
  if e.brokerId == ARGV[3] and not wanted[all[i]] and e.connectedAt < keepSince then removeEntry(all[i]) end
end
for j = 0, n - 1 do
  local id = ARGV[6 + 4 * j]
  removeEntry(id)
  putEntry(id, ARGV[7 + 4 * j])
  redis.call('HSET', KEYS[2], id, ARGV[8 + 4 * j])
  if ARGV[9 + 4 * j] == 'connected' then redis.call('HSET', KEYS[3], id, 'connected') end
end
return n
`;

/** ARGV: now. Sweeps, then → {sessions hash flat, subs hash flat, state hash flat} */
const READ_ALL = `${LIB}
sweep(tonumber(ARGV[1]))
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3])}
`;

/** ARGV: now, scopeId* → counts */
const COUNTS = `${LIB}
sweep(tonumber(ARGV[1]))
local out = {}
for i = 2, #ARGV do out[i - 1] = tonumber(redis.call('HGET', KEYS[4], ARGV[i]) or '0') end
return out
`;

type Script = (keys: string[], args: (string | number)[]) => Promise<unknown>;

export interface RedisSessionLedgerOptions {
  redis: RedisConnection;
  prefix: string;
  now?: () => number;
}

export class RedisSessionLedger implements SessionLedger {
  private readonly redis: RedisConnection;
  private readonly keys: string[];
  private readonly channel: string;
  private readonly now: () => number;
  private subscriber: RedisConnection | null = null;
  private readonly listeners = new Set<(r: DisconnectRequest) => void>();
  private readonly scripts: Record<'reserve' | 'release' | 'update' | 'heartbeat' | 'sync' | 'readAll' | 'counts', Script>;

  constructor({ redis, prefix, now }: RedisSessionLedgerOptions) {
    this.redis = redis;
    const base = `${prefix}{ledger}:`;
    this.keys = ['sessions', 'subs', 'state', 'counts', 'brokers'].map((k) => base + k);
    this.channel = `${base}disconnect`;
    this.now = now ?? Date.now;
    const define = (name: string, lua: string): Script => {
      const command = `scopegateLedger_${name}`;
      if (typeof (redis as unknown as Record<string, unknown>)[command] !== 'function') redis.defineCommand(command, { numberOfKeys: 5, lua });
      return (keys, args) => (redis as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[command]!(...keys, ...args);
    };
    this.scripts = {
      reserve: define('reserve', RESERVE),
      release: define('release', RELEASE),
      update: define('update', UPDATE),
      heartbeat: define('heartbeat', HEARTBEAT),
      sync: define('sync', SYNC),
      readAll: define('readAll', READ_ALL),
      counts: define('counts', COUNTS),
    };
    if (redis.listenerCount('error') === 0) redis.on('error', () => {});
  }

  private async run<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const e = new ScopeGateError('STORE_UNAVAILABLE', `The session ledger is unreachable (${op}).`);
      e.cause = err;
      throw e;
    }
  }

  reserve(entry: SessionEntry, limits: readonly ScopeLimit[], leaseMs: number): Promise<ReserveResult> {
    return this.run('reserve', async () => {
      const args: (string | number)[] = [this.now(), leaseMs, entry.sessionId, entry.brokerId, stored(entry), limits.length];
      for (const l of limits) args.push(l.scopeId, l.max);
      const reply = (await this.scripts.reserve(this.keys, args)) as [number, string?, number?, number?];
      if (reply[0] === 1) {
        if (entry.subscriptions.length > 0) await this.setSubscriptions(entry.sessionId, entry.subscriptions);
        if (entry.state === 'connected') await this.markConnected(entry.sessionId);
        return { ok: true };
      }
      return { ok: false, scopeId: String(reply[1]), max: Number(reply[2]), count: Number(reply[3]) };
    });
  }

  release(sessionId: string): Promise<boolean> {
    return this.run('release', async () => (await this.scripts.release(this.keys, [sessionId])) === 1);
  }

  markConnected(sessionId: string): Promise<boolean> {
    return this.run('update', async () => (await this.scripts.update(this.keys, [sessionId, 3, 'connected'])) === 1);
  }

  setSubscriptions(sessionId: string, subscriptions: readonly string[]): Promise<boolean> {
    return this.run('update', async () => (await this.scripts.update(this.keys, [sessionId, 2, JSON.stringify(subscriptions)])) === 1);
  }

  heartbeat(brokerId: string, leaseMs: number): Promise<HeartbeatResult> {
    return this.run('heartbeat', async () => {
      const [known, sessions] = (await this.scripts.heartbeat(this.keys, [this.now(), leaseMs, brokerId])) as [number, number];
      return { known: known === 1, sessions };
    });
  }

  sync(brokerId: string, entries: readonly SessionEntry[], keepReservedSince: number, leaseMs: number): Promise<void> {
    return this.run('sync', async () => {
      const args: (string | number)[] = [this.now(), leaseMs, brokerId, keepReservedSince, entries.length];
      for (const e of entries) args.push(e.sessionId, stored({ ...e, brokerId }), JSON.stringify(e.subscriptions), e.state);
      await this.scripts.sync(this.keys, args);
    });
  }

  list(filter: SessionFilter = {}): Promise<SessionEntry[]> {
    return this.run('list', async () => (await this.readAll()).filter((e) => matchesFilter(e, filter)).sort(byConnectedAt));
  }

  get(sessionId: string): Promise<SessionEntry | null> {
    return this.run('get', async () => (await this.readAll()).find((e) => e.sessionId === sessionId) ?? null);
  }

  counts(scopeIds: readonly string[]): Promise<Map<string, number>> {
    return this.run('counts', async () => {
      if (scopeIds.length === 0) return new Map();
      const reply = (await this.scripts.counts(this.keys, [this.now(), ...scopeIds])) as number[];
      return new Map(scopeIds.map((id, i) => [id, Number(reply[i] ?? 0)]));
    });
  }

  requestDisconnect(request: DisconnectRequest): Promise<void> {
    return this.run('disconnect', async () => {
      await this.redis.publish(this.channel, JSON.stringify({ sessionId: request.sessionId, brokerId: request.brokerId }));
    });
  }

  onDisconnect(listener: (request: DisconnectRequest) => void): () => void {
    this.listeners.add(listener);
    if (!this.subscriber) {
      // A subscribed connection can do nothing else: a second one, opened on first use.
      const sub = this.redis.duplicate();
      sub.on('error', () => {});
      sub.on('message', (channel: string, message: string) => {
        if (channel !== this.channel) return;
        let request: DisconnectRequest;
        try {
          const parsed = JSON.parse(message) as DisconnectRequest;
          if (typeof parsed.sessionId !== 'string' || typeof parsed.brokerId !== 'string') return;
          request = { sessionId: parsed.sessionId, brokerId: parsed.brokerId };
        } catch {
          return;
        }
        for (const l of this.listeners) l(request);
      });
      void sub.subscribe(this.channel).catch(() => undefined);
      this.subscriber = sub;
    }
    return () => this.listeners.delete(listener);
  }

  /** Resolves once the disconnect subscription is active (tests). */
  async ready(): Promise<void> {
    if (!this.subscriber) return;
    while ((await this.redis.pubsub('NUMSUB', this.channel).catch(() => [this.channel, 0]))[1] === 0) await new Promise((r) => setTimeout(r, 20));
  }

  async close(): Promise<void> {
    this.listeners.clear();
    this.subscriber?.disconnect();
    this.subscriber = null;
  }

  private async readAll(): Promise<SessionEntry[]> {
    const [sessions, subs, states] = (await this.scripts.readAll(this.keys, [this.now()])) as [string[], string[], string[]];
    const subsOf = pairs(subs);
    const stateOf = pairs(states);
    const out: SessionEntry[] = [];
    for (let i = 0; i + 1 < sessions.length; i += 2) {
      const id = sessions[i]!;
      const e = JSON.parse(sessions[i + 1]!) as Omit<SessionEntry, 'state' | 'subscriptions'>;
      out.push({ ...e, state: stateOf.get(id) === 'connected' ? 'connected' : 'connecting', subscriptions: subsOf.has(id) ? (JSON.parse(subsOf.get(id)!) as string[]) : [] });
    }
    return out;
  }
}

/** The immutable part of an entry, as stored in the sessions hash (`scopePath` is read by the scripts). */
function stored(e: SessionEntry): string {
  const { state: _s, subscriptions: _x, ...rest } = e;
  return JSON.stringify(rest);
}

function pairs(flat: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) m.set(flat[i]!, flat[i + 1]!);
  return m;
}
