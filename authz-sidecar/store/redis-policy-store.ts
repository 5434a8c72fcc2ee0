import { Cluster } from 'ioredis';
import { connectRedis, type RedisConnection } from '../../shared/redis-connection.ts';
import { ScopeGateError } from '../../shared/errors.ts';
import type { StoredRecord } from '../model/records.ts';
import {
  touchedPartitions,
  type AuditEntry,
  type AuditQuery,
  type ChangeEvent,
  type Commit,
  type CommitResult,
  type PolicyStore,
  type Snapshot,
  type Unwatch,
} from './policy-store.ts';

/**
 * The shared, durable store: everything lives under one key prefix.
 *
 *   <prefix>rec      hash   `<kind>:<id>` → record JSON
 *   <prefix>seq      string the global sequence number
 *   <prefix>pseq     hash   partition → seq it last changed at
 *   <prefix>changes  stream change events, entry id `<seq>-1`, field `e` = ChangeEvent JSON
 *   <prefix>audit    stream audit entries, entry id `<seq>-1`, field `e` = AuditEntry JSON
 *
 * A commit is one Lua script, so the optimistic check and every write happen atomically. Every Redis error
 * (refused, closed, timed out) is converted into STORE_UNAVAILABLE here, once.
 *
 * On Redis Cluster the prefix carries a hash tag (`{sg:}rec`…; one is added when REDIS_PREFIX has none), so
 * the script's five keys, the sequence and both streams live in one slot: policy data is small (see the
 * README for the measured size of 100,000 actors) and one slot keeps every commit atomic.
 *
 * With `minReplicas` > 0 a commit is answered only after that many replicas acknowledged it (WAIT), so a
 * write answered 2xx survives a failover; when they do not within `waitTimeoutMs`, the commit fails with
 * STORE_NOT_REPLICATED (it is applied on the master and may or may not survive).
 */

export interface RedisPolicyStoreOptions {
  redis: RedisConnection;
  prefix: string;
  /** Replicas that must acknowledge each commit (WAIT); 0 = do not wait. */
  minReplicas?: number;
  /** How long a commit waits for those acknowledgements. */
  waitTimeoutMs?: number;
  /** Approximate number of change events kept for `changesSince` (MAXLEN ~). */
  changeLogSize?: number;
  /** Approximate number of audit entries kept (MAXLEN ~). */
  auditLogSize?: number;
}

/**
 * KEYS: rec, seq, pseq, changes, audit
 * ARGV: nExpect, (partition, seq)*, nPartitions, partition*, nPuts, (field, json)*, nDeletes, field*,
 *       eventBody (JSON object without seq), auditBody (JSON object without seq), changeMaxLen, auditMaxLen
 * Returns {1, seq} when applied, {0, {partition...}} on conflict (nothing applied).
 */
const COMMIT_SCRIPT = `
local i = 1
local nExpect = tonumber(ARGV[i]); i = i + 1
local conflicts = {}
for j = 1, nExpect do
  local p = ARGV[i]
  local want = tonumber(ARGV[i + 1])
  i = i + 2
  local cur = tonumber(redis.call('HGET', KEYS[3], p) or '0')
  if cur ~= want then conflicts[#conflicts + 1] = p end
end
if #conflicts > 0 then return {0, conflicts} end

local seq = tonumber(redis.call('GET', KEYS[2]) or '0') + 1
local seqStr = string.format('%d', seq)
-- Sanity check before any write: the streams must accept <seq>-1 (all-or-nothing).
for _, key in ipairs({KEYS[4], KEYS[5]}) do
  local top = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
  if top[1] then
    local ms = tonumber(string.match(top[1][1], '^(%d+)-'))
    if ms and ms >= seq then return redis.error_reply('STORE_INCONSISTENT stream ' .. key .. ' is ahead of seq') end
  end
end

redis.call('SET', KEYS[2], seqStr)
local nPartitions = tonumber(ARGV[i]); i = i + 1
local partitions = {}
for j = 1, nPartitions do partitions[j] = ARGV[i]; i = i + 1 end
local nPuts = tonumber(ARGV[i]); i = i + 1
for j = 1, nPuts do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
local nDeletes = tonumber(ARGV[i]); i = i + 1
for j = 1, nDeletes do
  redis.call('HDEL', KEYS[1], ARGV[i])
  i = i + 1
end
for j = 1, nPartitions do redis.call('HSET', KEYS[3], partitions[j], seqStr) end

local function withSeq(body)
  local rest = string.sub(body, 2)
  if rest == '}' then return '{"seq":' .. seqStr .. '}' end
  return '{"seq":' .. seqStr .. ',' .. rest
end
local eventBody = ARGV[i]
local auditBody = ARGV[i + 1]
local changeMaxLen = ARGV[i + 2]
local auditMaxLen = ARGV[i + 3]
local id = seqStr .. '-1'
redis.call('XADD', KEYS[4], 'MAXLEN', '~', changeMaxLen, id, 'e', withSeq(eventBody))
redis.call('XADD', KEYS[5], 'MAXLEN', '~', auditMaxLen, id, 'e', withSeq(auditBody))
return {1, seq}
`;

type CommitReply = [number, number | string[]];

type RedisWithCommit = RedisConnection & {
  scopegateCommit(...args: (string | number)[]): Promise<CommitReply>;
};

type StreamEntry = [id: string, fields: string[]];

interface Watcher {
  stopped: boolean;
  conn: RedisConnection | null;
  /** Resolves the watch's `ready`: its starting point (the stream id to read after) is known. */
  started: () => void;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function unavailable(op: string, err: unknown): ScopeGateError {
  if (err instanceof ScopeGateError) return err;
  // The client sees the catalogue's wording plus the operation; the Redis error itself stays on `cause` for logs.
  const e = new ScopeGateError('STORE_UNAVAILABLE', `The store is unreachable (${op}); nothing was changed.`);
  e.cause = err;
  return e;
}

function fieldValue(fields: string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

function seqOfId(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

export class RedisPolicyStore implements PolicyStore {
  private readonly redis: RedisWithCommit;
  private readonly keys: { rec: string; seq: string; pseq: string; changes: string; audit: string };
  private readonly changeLogSize: number;
  private readonly auditLogSize: number;
  private readonly watchers = new Set<Watcher>();
  private readonly minReplicas: number;
  private readonly waitTimeoutMs: number;
  private closed = false;
  /** The connection and key prefix, for the session ledger that shares this Redis (authz-sidecar/ledger). */
  readonly redisClient: RedisConnection;
  readonly keyPrefix: string;

  constructor({ redis, prefix: givenPrefix, changeLogSize, auditLogSize, minReplicas, waitTimeoutMs }: RedisPolicyStoreOptions) {
    this.redis = redis as RedisWithCommit;
    const prefix = redis instanceof Cluster ? withHashTag(givenPrefix) : givenPrefix;
    this.minReplicas = minReplicas ?? 0;
    this.waitTimeoutMs = waitTimeoutMs ?? 1_000;
    this.redisClient = redis;
    this.keyPrefix = prefix;
    this.keys = {
      rec: `${prefix}rec`,
      seq: `${prefix}seq`,
      pseq: `${prefix}pseq`,
      changes: `${prefix}changes`,
      audit: `${prefix}audit`,
    };
    this.changeLogSize = changeLogSize ?? 100_000;
    this.auditLogSize = auditLogSize ?? 100_000;
    if (typeof this.redis.scopegateCommit !== 'function') {
      redis.defineCommand('scopegateCommit', { numberOfKeys: 5, lua: COMMIT_SCRIPT });
    }
    // Never let a connection error become an unhandled 'error' event.
    if (redis.listenerCount('error') === 0) redis.on('error', () => {});
  }

  private async guard<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw unavailable(op, err);
    }
  }

  snapshot(): Promise<Snapshot> {
    return this.guard('snapshot', async () => {
      const res = await this.redis.multi().hgetall(this.keys.rec).get(this.keys.seq).hgetall(this.keys.pseq).exec();
      if (!res) throw new Error('transaction aborted');
      for (const [err] of res) if (err) throw err;
      const rec = (res[0]?.[1] ?? {}) as Record<string, string>;
      const seq = Number((res[1]?.[1] as string | null) ?? 0);
      const pseq = (res[2]?.[1] ?? {}) as Record<string, string>;
      const partitions: Record<string, number> = {};
      for (const [p, s] of Object.entries(pseq)) partitions[p] = Number(s);
      return {
        seq,
        records: Object.values(rec).map((json) => JSON.parse(json) as StoredRecord),
        partitions,
      };
    });
  }

  commit(commit: Commit): Promise<CommitResult> {
    return this.guard('commit', async () => {
      const args: (string | number)[] = [];
      const expect = Object.entries(commit.expect);
      args.push(expect.length);
      for (const [p, s] of expect) args.push(p, String(s));
      const partitions = touchedPartitions(commit);
      args.push(partitions.length, ...partitions);
      args.push(commit.puts.length);
      for (const r of commit.puts) args.push(`${r.kind}:${r.id}`, JSON.stringify(r));
      args.push(commit.deletes.length);
      for (const r of commit.deletes) args.push(`${r.kind}:${r.id}`);
      const { seq: _ignored, ...audit } = commit.audit as Commit['audit'] & { seq?: unknown };
      args.push(
        JSON.stringify({ partitions, puts: commit.puts, deletes: commit.deletes }),
        JSON.stringify(audit),
        this.changeLogSize,
        this.auditLogSize,
      );
      const reply = await this.redis.scopegateCommit(
        this.keys.rec,
        this.keys.seq,
        this.keys.pseq,
        this.keys.changes,
        this.keys.audit,
        ...args,
      );
      const [ok, value] = reply;
      if (Number(ok) === 1) {
        await this.waitForReplicas();
        return { ok: true, seq: Number(value) };
      }
      return { ok: false, conflicts: (value as string[]).map(String) };
    });
  }

  /**
   * WAIT for replica acknowledgements of this connection's writes so far. Sent in a pipeline with a read of
   * the sequence key so that on a Cluster it reaches the master of the store's slot.
   */
  private async waitForReplicas(): Promise<void> {
    if (this.minReplicas <= 0) return;
    const res = await this.redis.pipeline().exists(this.keys.seq).wait(this.minReplicas, this.waitTimeoutMs).exec();
    const [err, acked] = res?.[1] ?? [new Error('no reply to WAIT'), 0];
    if (err) throw err;
    if (Number(acked) < this.minReplicas) {
      throw new ScopeGateError('STORE_NOT_REPLICATED', undefined, [{ message: `${Number(acked)} of ${this.minReplicas} replicas acknowledged within ${this.waitTimeoutMs} ms` }]);
    }
  }

  changesSince(seq: number): Promise<ChangeEvent[] | 'gap'> {
    return this.guard('changesSince', async () => {
      const start = Math.max(Math.floor(seq) + 1, 1);
      const res = await this.redis.multi().get(this.keys.seq).xrange(this.keys.changes, `${start}-0`, '+').exec();
      if (!res) throw new Error('transaction aborted');
      for (const [err] of res) if (err) throw err;
      const current = Number((res[0]?.[1] as string | null) ?? 0);
      if (seq >= current) return [];
      const entries = (res[1]?.[1] ?? []) as StreamEntry[];
      const events: ChangeEvent[] = [];
      let expected = start;
      for (const [id, fields] of entries) {
        const s = seqOfId(id);
        if (s > current) break;
        if (s !== expected) return 'gap';
        const json = fieldValue(fields, 'e');
        if (json === undefined) return 'gap';
        events.push(JSON.parse(json) as ChangeEvent);
        expected++;
      }
      if (expected !== current + 1) return 'gap';
      return events;
    });
  }

  watch(listener: (event: ChangeEvent) => void): Unwatch {
    let started!: () => void;
    const ready = new Promise<void>((resolve) => (started = resolve));
    const watcher: Watcher = { stopped: false, conn: null, started };
    if (this.closed) {
      started();
      return Object.assign(() => {}, { ready });
    }
    this.watchers.add(watcher);
    // Issued now, on the main connection: every commit sent after watch() through this client is ordered
    // after this read, so its event is delivered.
    const startSeq = this.redis.get(this.keys.seq);
    startSeq.catch(() => {});
    void this.runWatch(watcher, startSeq, listener).catch(() => {});
    return Object.assign(() => this.stopWatcher(watcher), { ready });
  }

  private stopWatcher(watcher: Watcher): void {
    if (watcher.stopped) return;
    watcher.stopped = true;
    this.watchers.delete(watcher);
    watcher.conn?.disconnect();
    watcher.conn = null;
  }

  private async runWatch(
    watcher: Watcher,
    startSeq: Promise<string | null>,
    listener: (event: ChangeEvent) => void,
  ): Promise<void> {
    let lastId: string | null = null;
    try {
      lastId = `${Number((await startSeq) ?? 0)}-1`;
    } catch {
      lastId = null;
    }
    if (lastId !== null) watcher.started();
    if (watcher.stopped) return watcher.started();
    const conn = this.redis.duplicate() as RedisConnection;
    conn.on('error', () => {});
    watcher.conn = conn;
    while (!watcher.stopped) {
      try {
        if (lastId === null) {
          lastId = `${Number((await conn.get(this.keys.seq)) ?? 0)}-1`;
          watcher.started();
        }
        const res = (await conn.xread('COUNT', 1000, 'BLOCK', 1000, 'STREAMS', this.keys.changes, lastId)) as
          | [string, StreamEntry[]][]
          | null;
        if (watcher.stopped) break;
        if (!res) continue;
        for (const [, entries] of res) {
          for (const [id, fields] of entries) {
            lastId = id;
            const json = fieldValue(fields, 'e');
            if (json === undefined) continue;
            let event: ChangeEvent;
            try {
              event = JSON.parse(json) as ChangeEvent;
            } catch {
              continue;
            }
            if (watcher.stopped) return;
            try {
              listener(event);
            } catch {
              /* a failing listener must not stop the feed */
            }
          }
        }
      } catch {
        if (watcher.stopped) break;
        await sleep(250);
      }
    }
    conn.disconnect();
  }

  audit(query: AuditQuery): Promise<AuditEntry[]> {
    return this.guard('audit', async () => {
      const out: AuditEntry[] = [];
      if (!(query.limit > 0)) return out;
      let end: string;
      if (query.before !== undefined) {
        const last = Math.ceil(query.before) - 1;
        if (last < 1) return out;
        end = `${last}-1`;
      } else {
        end = '+';
      }
      const batch = query.tenantId === undefined ? Math.min(query.limit, 1000) : 500;
      while (out.length < query.limit) {
        const entries = (await this.redis.xrevrange(this.keys.audit, end, '-', 'COUNT', batch)) as StreamEntry[];
        for (const [, fields] of entries) {
          const json = fieldValue(fields, 'e');
          if (json === undefined) continue;
          const e = JSON.parse(json) as AuditEntry;
          if (query.tenantId !== undefined && !(e.tenantIds ?? []).includes(query.tenantId)) continue;
          out.push(e);
          if (out.length >= query.limit) break;
        }
        const lastEntry = entries[entries.length - 1];
        if (entries.length < batch || !lastEntry) break;
        end = `(${lastEntry[0]}`;
      }
      return out;
    });
  }

  ping(): Promise<void> {
    return this.guard('ping', async () => {
      if (this.closed) throw new Error('store closed');
      await this.redis.ping();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of [...this.watchers]) this.stopWatcher(w);
    if (this.redis.status === 'ready') {
      try {
        await this.redis.quit();
        return;
      } catch {
        /* fall through */
      }
    }
    this.redis.disconnect();
  }
}

/** `{prefix}` unless the prefix already has a hash tag: every key of the store then maps to one Cluster slot. */
export function withHashTag(prefix: string): string {
  return /\{[^}]+\}/.test(prefix) ? prefix : `{${prefix}}`;
}

const silent = { warn: () => undefined, info: () => undefined };

/** A store connection to one Redis by URL, as the sidecar makes them (shared/redis-connection.ts); for tests and tools. */
export function createRedisClient(url: string): RedisConnection {
  return connectRedis({ mode: 'single', url }, { name: 'store', logger: silent });
}
