/**
 * The Lua scripts of the Redis stores. Each runs atomically; the decision scripts touch only keys under
 * the `{prefix}` hash tag and the counter script only keys under one client's tag, so they are legal on
 * a Redis Cluster (every key of one call lives in one slot).
 */
import { luaScript } from './redis-link.js';

/**
 * Stores a decision and logs it. KEYS: hash, stream. ARGV: key, encoded decision, stream max length,
 * agent id. Returns {1, new log entry id}, or {0, last log entry id} when the hash already held exactly
 * this decision: the state the caller saw is the log's at that id (a later entry may have changed it).
 */
export const PUT_DECISION = luaScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
  return {0, last[1] and last[1][1] or '0-0'}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return {1, redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'op', 'put', 'key', ARGV[1], 'd', ARGV[2], 'agent', ARGV[4])}
`);

/**
 * Deletes a decision and logs it. KEYS: hash, stream. ARGV: key, stream max length, agent id.
 * Returns {1, new log entry id}, or {0, last log entry id} when there was nothing to delete.
 */
export const DELETE_DECISION = luaScript(`
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then
  local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
  return {0, last[1] and last[1][1] or '0-0'}
end
return {1, redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'op', 'del', 'key', ARGV[1], 'agent', ARGV[3])}
`);

/**
 * The log position a snapshot starts from, and the number of decisions held. The hash is then read
 * in pages (HSCAN) after this id: a change made meanwhile is both in the pages or not, and in the log
 * after the id, so following the log from it misses nothing (an entry seen twice changes nothing).
 * An empty log gets a marker entry, so that every reader position is a real entry whose
 * disappearance shows the log was trimmed past it.
 * KEYS: hash, stream. ARGV: agent id. Returns {id, number of fields}.
 */
export const SNAPSHOT_POSITION = luaScript(`
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local id
if #last == 0 then
  id = redis.call('XADD', KEYS[2], '*', 'op', 'mark', 'agent', ARGV[1])
else
  id = last[1][1]
end
return {id, redis.call('HLEN', KEYS[1])}
`);

/**
 * One round of the janitor: if this agent holds (or can take) the lock, scans a batch of the hash from
 * `cursor` and deletes the expired decisions, logging each delete. KEYS: hash, stream, lock.
 * ARGV: agent id, lock ttl ms, cursor, batch size, now (ms), stream max length.
 * Returns nil when another agent holds the lock, else {next cursor, deleted count}.
 */
export const JANITOR_ROUND = luaScript(`
local holder = redis.call('GET', KEYS[3])
if holder and holder ~= ARGV[1] then return false end
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
local scan = redis.call('HSCAN', KEYS[1], ARGV[3], 'COUNT', ARGV[4])
local fields = scan[2]
local now = tonumber(ARGV[5])
local deleted = 0
for i = 1, #fields, 2 do
  local ok, d = pcall(cjson.decode, fields[i + 1])
  if ok and type(d) == 'table' and type(d.expiresAt) == 'number' and d.expiresAt <= now then
    redis.call('HDEL', KEYS[1], fields[i])
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'op', 'del', 'key', fields[i], 'agent', ARGV[1])
    deleted = deleted + 1
  end
end
return {scan[1], deleted}
`);

/** Gives the janitor lock up if this agent holds it. KEYS: lock. ARGV: agent id. */
export const RELEASE_JANITOR = luaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

/**
 * Adds a client's delta to its current time bucket and returns the sliding-window estimate across all
 * agents: the current bucket plus the previous one weighted by the part of it still in the window.
 * The bucket comes from Redis' clock (one clock for every agent) unless ARGV[3] gives one. Deltas may
 * be fractional (weighted events), hence INCRBYFLOAT and a text reply (an integer reply would truncate).
 * KEYS: the client's key base `<prefix>:c:{<client>}`; the buckets are `<base>:<n>`, in the same slot.
 * ARGV: delta, window ms, clock ms or ''.
 */
export const COUNT_IN_WINDOW = luaScript(`
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local window = tonumber(ARGV[2])
local bucket = math.floor(now / window)
local current = KEYS[1] .. ':' .. bucket
-- Anything else than a count in a bucket (written by hand, another program) counts as nothing: the
-- current bucket is overwritten, the previous one ignored, so one bad key cannot fail every flush.
local function count_in(reply)
  local n = type(reply) == 'string' and tonumber(reply) or nil
  if n == nil or n ~= n or n < 0 or n == math.huge then return nil end
  return n
end
local added = redis.pcall('INCRBYFLOAT', current, ARGV[1])
local count = count_in(added)
if count == nil then
  redis.call('DEL', current)
  count = tonumber(redis.call('INCRBYFLOAT', current, ARGV[1]))
end
-- Keep each bucket until the end of the next one (while it still weighs), plus a second of slack.
redis.call('PEXPIRE', current, math.floor((bucket + 2) * window - now + 1000))
local previous = count_in(redis.pcall('GET', KEYS[1] .. ':' .. (bucket - 1))) or 0
return tostring(count + math.floor(previous * (1 - (now - bucket * window) / window)))
`);
