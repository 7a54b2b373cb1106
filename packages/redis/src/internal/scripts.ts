/**
 * The Lua scripts that make each multi-key step atomic: Redis runs a script
 * alone, so a claim, a settle or a move can never interleave with another
 * client's. Time is the server's (`TIME`), the one clock every consumer of a
 * queue shares; deadlines in the sorted sets are server milliseconds.
 *
 * Invariant kept by every script: an entry in the group's pending list (PEL)
 * is in exactly one of `inFlight` (claimed, scored by its deadline) or
 * `retry` (nacked, scored by when it is visible again). A receipt is the entry
 * id and the PEL delivery count of its claim: every claim (XREADGROUP or
 * XCLAIM) raises the count, so an older receipt can never match a newer claim.
 */
import * as EffectRedis from "effect/persistence/Redis"
import type { QueueKeys } from "./Keys.ts"

const now = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

/** KEYS[1] stream, KEYS[idx] inFlight; ARGV[1] group. True while the receipt names the live claim. */
const holds = (inFlight: number) => `
local function holds(id, count)
  local deadline = redis.call('ZSCORE', KEYS[${inFlight}], id)
  if not deadline or tonumber(deadline) <= now then return false end
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  return pending[1] ~= nil and tostring(pending[1][4]) == count
end
`

const lastId = `
local function last_id(key)
  local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
  if last[1] then return last[1][1] end
  return '0-0'
end
`

/**
 * KEYS[1] stream; ARGV[1] our group. An acked entry is deleted from the stream
 * unless another group still needs it (not yet delivered to it, or pending in
 * it); the last group to settle it deletes it.
 */
const deletable = `
local function id_less(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
local others = {}
for _, info in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, last
  for j = 1, #info, 2 do
    if info[j] == 'name' then name = info[j + 1] elseif info[j] == 'last-delivered-id' then last = info[j + 1] end
  end
  if name ~= ARGV[1] then others[#others + 1] = {name, last} end
end
local function deletable(id)
  for _, other in ipairs(others) do
    if id_less(other[2], id) then return false end
    if redis.call('XPENDING', KEYS[1], other[1], id, id, 1)[1] then return false end
  end
  return true
end
`

const keysOf = (keys: QueueKeys) => [keys.stream, keys.delayed, keys.wake, keys.inFlight, keys.retry]

/**
 * A plain send of payload/headers pairs (headers '' for none): their entry ids
 * in order, or false when the queue does not exist.
 */
export const send = EffectRedis.script(
  (keys: QueueKeys, payloadsAndHeaders: ReadonlyArray<string>) => [keys.stream, ...payloadsAndHeaders],
  {
    numberOfKeys: 1,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local ids = {}
for i = 1, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', 'p', ARGV[i])
  else
    ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', 'p', ARGV[i], 'h', ARGV[i + 1])
  end
end
return ids
`
  }
).withReturnType<ReadonlyArray<string> | null>()

/**
 * A delayed send: each message waits in the delayed set (member: its id, payload,
 * headers and send time) until the claim step moves it into the stream; the
 * wake stream tells blocked subscribers the next due time changed.
 */
export const sendDelayed = EffectRedis.script(
  (keys: QueueKeys, delayMs: number, headers: string, idsAndPayloads: ReadonlyArray<string>) => [
    keys.stream,
    keys.delayed,
    keys.wake,
    delayMs,
    headers,
    ...idsAndPayloads
  ],
  {
    numberOfKeys: 3,
    lua: `${now}
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local due = now + tonumber(ARGV[1])
for i = 3, #ARGV, 2 do
  redis.call('ZADD', KEYS[2], due, cjson.encode({ARGV[i], ARGV[i + 1], ARGV[2], tostring(now)}))
end
redis.call('XADD', KEYS[3], 'MAXLEN', 1, '*', 'due', due)
return 1
`
  }
).withReturnType<number>()

/**
 * The claim step of receive and subscribe: moves due delayed messages into
 * the stream, re-claims (XCLAIM) nacked claims now due and claims whose
 * deadline passed, then reads new entries (XREADGROUP) up to `max`; every
 * claim gets its deadline. Returns `[now, nextDue, lastStreamId, lastWakeId,
 * id, count, fields, id, count, fields, ...]`; `nextDue` is the earliest
 * score of the three sets (-1: none), when a subscriber must look again.
 */
export const claim = EffectRedis.script(
  (keys: QueueKeys, group: string, consumer: string, max: number, visibilityMs: number) => [
    ...keysOf(keys),
    group,
    consumer,
    max,
    visibilityMs
  ],
  {
    numberOfKeys: 5,
    lua: `${now}${lastId}
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NOQUEUE queue does not exist') end
local group, consumer, max, vt = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)
for _, member in ipairs(due) do
  local m = cjson.decode(member)
  if m[3] == '' then
    redis.call('XADD', KEYS[1], '*', 'id', m[1], 'p', m[2], 't', m[4])
  else
    redis.call('XADD', KEYS[1], '*', 'id', m[1], 'p', m[2], 'h', m[3], 't', m[4])
  end
  redis.call('ZREM', KEYS[2], member)
end
local out = {}
local n = 0
local function claimed(id, count, fields)
  redis.call('ZADD', KEYS[4], now + vt, id)
  n = n + 1
  out[#out + 1] = id
  out[#out + 1] = count
  out[#out + 1] = fields
end
for _, key in ipairs({KEYS[5], KEYS[4]}) do
  if n < max then
    local ids = redis.call('ZRANGEBYSCORE', key, '-inf', now, 'LIMIT', 0, max - n)
    for _, id in ipairs(ids) do
      redis.call('ZREM', key, id)
      local entry = redis.call('XCLAIM', KEYS[1], group, consumer, 0, id)
      if entry[1] then
        local pending = redis.call('XPENDING', KEYS[1], group, id, id, 1)
        claimed(id, pending[1][4], entry[1][2])
      end
    end
  end
end
if n < max then
  local read = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', max - n, 'STREAMS', KEYS[1], '>')
  if read then
    for _, entry in ipairs(read[1][2]) do claimed(entry[1], 1, entry[2]) end
  end
end
local nextDue = -1
for _, key in ipairs({KEYS[2], KEYS[5], KEYS[4]}) do
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if first[2] then
    local score = tonumber(first[2])
    if nextDue < 0 or score < nextDue then nextDue = score end
  end
end
local head = {now, nextDue, last_id(KEYS[1]), last_id(KEYS[3])}
for i = 1, #out do head[#head + 1] = out[i] end
return head
`
  }
).withReturnType<ReadonlyArray<unknown>>()

/** Receipts as ARGV pairs: entry id, delivery count. */
type Pairs = ReadonlyArray<string>
/** Receipts with a duration each: entry id, delivery count, milliseconds. */
type Triples = ReadonlyArray<string | number>

/** Ack: XACK (+ XDEL, see deletable) of every receipt still holding its claim; one 1/0 per receipt. */
export const ack = EffectRedis.script(
  (keys: QueueKeys, group: string, pairs: Pairs) => [keys.stream, keys.inFlight, group, ...pairs],
  {
    numberOfKeys: 2,
    lua: `${now}${holds(2)}${deletable}
local out, done = {}, {}
for i = 2, #ARGV, 2 do
  if holds(ARGV[i], ARGV[i + 1]) then
    done[#done + 1] = ARGV[i]
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
if #done > 0 then
  redis.call('XACK', KEYS[1], ARGV[1], unpack(done))
  redis.call('ZREM', KEYS[2], unpack(done))
  if #others == 0 then
    redis.call('XDEL', KEYS[1], unpack(done))
  else
    for _, id in ipairs(done) do
      if deletable(id) then redis.call('XDEL', KEYS[1], id) end
    end
  end
end
return out
`
  }
).withReturnType<ReadonlyArray<number>>()

/**
 * Nack with requeue (and release): the claim stays in the PEL, scored in
 * `retry` by when it is visible again, so its delivery count (receiveCount)
 * carries on; the wake stream tells blocked subscribers. Receipts as
 * triples: entry id, delivery count, delay ms.
 */
export const nack = EffectRedis.script(
  (keys: QueueKeys, group: string, triples: Triples) => [
    keys.stream,
    keys.inFlight,
    keys.retry,
    keys.wake,
    group,
    ...triples
  ],
  {
    numberOfKeys: 4,
    lua: `${now}${holds(2)}
local out = {}
local earliest = -1
for i = 2, #ARGV, 3 do
  if holds(ARGV[i], ARGV[i + 1]) then
    local visibleAt = now + tonumber(ARGV[i + 2])
    redis.call('ZREM', KEYS[2], ARGV[i])
    redis.call('ZADD', KEYS[3], visibleAt, ARGV[i])
    if earliest < 0 or visibleAt < earliest then earliest = visibleAt end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
if earliest >= 0 then redis.call('XADD', KEYS[4], 'MAXLEN', 1, '*', 'due', earliest) end
return out
`
  }
).withReturnType<ReadonlyArray<number>>()

/** Extend: a held claim's deadline moves to now + its duration. Triples: entry id, delivery count, duration ms. */
export const extend = EffectRedis.script(
  (keys: QueueKeys, group: string, triples: Triples) => [keys.stream, keys.inFlight, group, ...triples],
  {
    numberOfKeys: 2,
    lua: `${now}${holds(2)}
local out = {}
for i = 2, #ARGV, 3 do
  if holds(ARGV[i], ARGV[i + 1]) then
    redis.call('ZADD', KEYS[2], 'XX', now + tonumber(ARGV[i + 2]), ARGV[i])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
`
  }
).withReturnType<ReadonlyArray<number>>()

/**
 * Dead-letter: in one step the entry is copied to the dead-letter queue's
 * stream (keeping its message id and first enqueue time), acked and deleted
 * (unless another group still needs it).
 * A missing dead-letter stream is created with the group: never dropped.
 */
export const deadLetter = EffectRedis.script(
  (keys: QueueKeys, dlq: QueueKeys, group: string, pairs: Pairs) => [
    keys.stream,
    keys.inFlight,
    dlq.stream,
    group,
    ...pairs
  ],
  {
    numberOfKeys: 3,
    lua: `${now}${holds(2)}${deletable}
local out = {}
if redis.call('EXISTS', KEYS[3]) == 0 then redis.call('XGROUP', 'CREATE', KEYS[3], ARGV[1], '0', 'MKSTREAM') end
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  if holds(id, ARGV[i + 1]) then
    local entry = redis.call('XRANGE', KEYS[1], id, id)
    if entry[1] then
      local fields = entry[1][2]
      local copy, hasId, hasTime = {}, false, false
      for j = 1, #fields, 2 do
        if fields[j] == 'id' then hasId = true end
        if fields[j] == 't' then hasTime = true end
        copy[#copy + 1] = fields[j]
        copy[#copy + 1] = fields[j + 1]
      end
      if not hasId then copy[#copy + 1] = 'id'; copy[#copy + 1] = id end
      if not hasTime then copy[#copy + 1] = 't'; copy[#copy + 1] = string.match(id, '^(%d+)') end
      redis.call('XADD', KEYS[3], '*', unpack(copy))
    end
    redis.call('XACK', KEYS[1], ARGV[1], id)
    if deletable(id) then redis.call('XDEL', KEYS[1], id) end
    redis.call('ZREM', KEYS[2], id)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
`
  }
).withReturnType<ReadonlyArray<number>>()

/** Removes every message (visible, claimed, delayed) and recreates the group: `[removed]`. */
export const purge = EffectRedis.script(
  (keys: QueueKeys, group: string) => [...keysOf(keys), group],
  {
    numberOfKeys: 5,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local removed = redis.call('XLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4], KEYS[5])
redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
return removed
`
  }
).withReturnType<number>()

/**
 * `[xlen, undelivered+due claims (visible), inFlight, delayed, oldestAgeMs (-1: empty), deadLettered]`;
 * -1 alone when the queue does not exist.
 */
export const stats = EffectRedis.script(
  (keys: QueueKeys, dlq: QueueKeys) => [...keysOf(keys), dlq.stream],
  {
    numberOfKeys: 6,
    lua: `${now}
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local length = redis.call('XLEN', KEYS[1])
local claims, nacked, delayed = redis.call('ZCARD', KEYS[4]), redis.call('ZCARD', KEYS[5]), redis.call('ZCARD', KEYS[2])
local expired = redis.call('ZCOUNT', KEYS[4], '-inf', now)
local retryDue = redis.call('ZCOUNT', KEYS[5], '-inf', now)
local delayedDue = redis.call('ZCOUNT', KEYS[2], '-inf', now)
local oldest = -1
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if first[1] then oldest = now - tonumber(string.match(first[1][1], '^(%d+)')) end
return {
  length + delayed,
  length - claims - nacked + expired + retryDue + delayedDue,
  claims - expired,
  delayed - delayedDue + nacked - retryDue,
  oldest,
  redis.call('XLEN', KEYS[6])
}
`
  }
).withReturnType<ReadonlyArray<number>>()
