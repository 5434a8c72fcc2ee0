import type { RedisConnection } from '../../shared/redis-connection.ts';
import type { RetainBound, RetainedQuotaStore } from './retained-quota.ts';

/**
 * The retained quota of Redis mode: the counts live in Redis, next to the retained messages themselves, so
 * every broker of a cluster admits against the same numbers and a restarted broker still knows what is
 * stored. One Lua script per admission (retained PUBLISHes only; other publishes never come here), so two
 * brokers admitting at once cannot both take the last slot.
 *
 * Keys (under REDIS_BROKER_PREFIX, one hash tag so both live in one Cluster slot):
 *   {rq}topics  hash  internal topic → `<bytes>\n<bound key>\n…` (what the stored message was counted against)
 *   {rq}usage   hash  `m|<bound key>` → messages, `b|<bound key>` → bytes
 */
const TOPICS = '{rq}topics';
const USAGE = '{rq}usage';

const RELEASE = `
local function release(topic, v)
  local first = true
  local bytes = 0
  for part in string.gmatch(v, '[^\\n]+') do
    if first then bytes = tonumber(part); first = false
    else
      local m = redis.call('HINCRBY', KEYS[2], 'm|' .. part, -1)
      redis.call('HINCRBY', KEYS[2], 'b|' .. part, -bytes)
      if m <= 0 then redis.call('HDEL', KEYS[2], 'm|' .. part, 'b|' .. part) end
    end
  end
  redis.call('HDEL', KEYS[1], topic)
end
`;

/** KEYS[1] topics, KEYS[2] usage; ARGV[1] topic, ARGV[2] bytes, then per bound: key, max messages, max bytes (-1: none). */
const ADMIT_LUA = `${RELEASE}
local topic = ARGV[1]
local bytes = tonumber(ARGV[2])
local prev = redis.call('HGET', KEYS[1], topic)
if bytes == 0 then
  if prev then release(topic, prev) end
  return 1
end
local prevBytes = 0
local counted = {}
if prev then
  local first = true
  for part in string.gmatch(prev, '[^\\n]+') do
    if first then prevBytes = tonumber(part); first = false else counted[part] = true end
  end
end
for i = 3, #ARGV, 3 do
  local k = ARGV[i]
  local maxM = tonumber(ARGV[i + 1])
  local maxB = tonumber(ARGV[i + 2])
  local m = tonumber(redis.call('HGET', KEYS[2], 'm|' .. k) or '0')
  local b = tonumber(redis.call('HGET', KEYS[2], 'b|' .. k) or '0')
  if counted[k] then b = b - prevBytes else m = m + 1 end
  b = b + bytes
  if maxM >= 0 and m > maxM then return 0 end
  if maxB >= 0 and b > maxB then return 0 end
end
if prev then release(topic, prev) end
local entry = tostring(bytes)
for i = 3, #ARGV, 3 do
  redis.call('HINCRBY', KEYS[2], 'm|' .. ARGV[i], 1)
  redis.call('HINCRBY', KEYS[2], 'b|' .. ARGV[i], bytes)
  entry = entry .. '\\n' .. ARGV[i]
end
redis.call('HSET', KEYS[1], topic, entry)
return 1
`;

/** KEYS[1] topics, KEYS[2] usage; ARGV[1] from, ARGV[2] to: the count follows the message (a displaced one is given back). */
const MOVE_LUA = `${RELEASE}
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
local displaced = redis.call('HGET', KEYS[1], ARGV[2])
if displaced then release(ARGV[2], displaced) end
redis.call('HSET', KEYS[1], ARGV[2], v)
return 1
`;

type QuotaConnection = RedisConnection & {
  retainedAdmit?(topics: string, usage: string, ...args: Array<string | number>): Promise<number>;
  retainedMove?(topics: string, usage: string, from: string, to: string): Promise<number>;
};

export class RedisRetainedQuota implements RetainedQuotaStore {
  private readonly conn: QuotaConnection;

  constructor(conn: RedisConnection) {
    this.conn = conn as QuotaConnection;
    if (!this.conn.retainedAdmit) this.conn.defineCommand('retainedAdmit', { numberOfKeys: 2, lua: ADMIT_LUA });
    if (!this.conn.retainedMove) this.conn.defineCommand('retainedMove', { numberOfKeys: 2, lua: MOVE_LUA });
  }

  async admit(topic: string, bytes: number, bounds: readonly RetainBound[]): Promise<boolean> {
    const args: Array<string | number> = [topic, bytes];
    for (const b of bounds) args.push(b.key, b.maxMessages ?? -1, b.maxBytes ?? -1);
    return (await this.conn.retainedAdmit!(TOPICS, USAGE, ...args)) === 1;
  }

  async removed(topic: string): Promise<void> {
    await this.conn.retainedAdmit!(TOPICS, USAGE, topic, 0);
  }

  async moved(from: string, to: string): Promise<void> {
    await this.conn.retainedMove!(TOPICS, USAGE, from, to);
  }
}
