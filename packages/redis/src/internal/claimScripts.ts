/**
 * The claim step and the registration of what a subscription's blocking
 * read claimed (see scripts.ts for the invariant every script keeps).
 */
import * as EffectRedis from "effect/persistence/Redis"
import type { QueueKeys } from "./Keys.ts"
import { chunked, keysOf, now } from "./lua.ts"

/** How often the claim step looks for claims without a deadline, and how old such a claim must be (ms). */
export const janitorPeriodMs = 3000

/**
 * The claim step of receive and subscribe: moves due delayed messages into
 * the stream, re-claims (XCLAIM) nacked claims now due and claims whose
 * deadline passed, then reads new entries (XREADGROUP) up to `max`; every
 * claim gets its deadline. Returns `[now, nextDue, id, count, fields, id,
 * count, fields, ...]`; `nextDue` is the earliest score of the three sets
 * (-1: none), when a subscriber must look again.
 *
 * The janitor, at most once per `janitorPeriodMs` per queue and group (the
 * time kept in the `j:` hash): a claim read by a subscription's blocking
 * XREADGROUP is registered (given its deadline) by a call right after the
 * read; if that reply or call was lost (the connection died, the process
 * crashed) the entry sits pending without a deadline. The janitor gives every
 * such entry at least `janitorPeriodMs` old the deadline now, so the next claim
 * step takes it back; it walks the pending list a page per run (the cursor in
 * `j:`), and acknowledges wake signals read by consumers that are gone.
 * `ensureWake` ('1') creates the group on the wake stream, which a
 * subscription reads through the group (its first claim step asks).
 */
export const claim = EffectRedis.script(
  (keys: QueueKeys, group: string, consumer: string, max: number, visibilityMs: number, ensureWake: boolean) => [
    ...keysOf(keys),
    keys.janitor,
    group,
    consumer,
    max,
    visibilityMs,
    ensureWake ? 1 : 0
  ],
  {
    numberOfKeys: 6,
    lua: `${now}${chunked}
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NOQUEUE queue does not exist') end
local group, consumer, max, vt = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if ARGV[5] == '1' then redis.pcall('XGROUP', 'CREATE', KEYS[3], group, '$', 'MKSTREAM') end
-- Wake signals a subscription read (this consumer's, or with nil anyone's) carry nothing to
-- settle: acknowledged here, since a claim step follows every read of one. No group on the
-- wake stream (only receive has run): nothing to do.
local function acknowledge_signals(owner)
  local ok, signals
  if owner then
    ok, signals = pcall(redis.call, 'XPENDING', KEYS[3], group, '-', '+', 1000, owner)
  else
    ok, signals = pcall(redis.call, 'XPENDING', KEYS[3], group, '-', '+', 1000)
  end
  if ok and #signals > 0 then
    local ids = {}
    for _, p in ipairs(signals) do ids[#ids + 1] = p[1] end
    redis.call('XACK', KEYS[3], group, unpack(ids))
  end
end
if tonumber(redis.call('HGET', KEYS[6], 'at') or '0') <= now then
  local from = redis.call('HGET', KEYS[6], 'from') or '-'
  local page = redis.call('XPENDING', KEYS[1], group, 'IDLE', ${janitorPeriodMs}, from, '+', 200)
  for _, p in ipairs(page) do
    local member = p[1] .. ':' .. p[4]
    if not redis.call('ZSCORE', KEYS[4], member) and not redis.call('ZSCORE', KEYS[5], p[1]) then
      redis.call('ZADD', KEYS[4], now, member)
    end
  end
  if #page == 200 then from = '(' .. page[#page][1] else from = '-' end
  redis.call('HSET', KEYS[6], 'at', now + ${janitorPeriodMs}, 'from', from)
  acknowledge_signals(nil)
end
acknowledge_signals(consumer)
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
-- Deadlines of this step's claims (score, member), added in one ZADD at the end: none of them
-- is due within this step. The score as a string made once: Lua formats a number argument of
-- redis.call anew each time, a cost that showed per member.
local deadlines = {}
local deadline = tostring(now + vt)
local function claimed(id, count, fields)
  deadlines[#deadlines + 1] = deadline
  deadlines[#deadlines + 1] = id .. ':' .. count
  n = n + 1
  out[#out + 1] = id
  out[#out + 1] = count
  out[#out + 1] = fields
end
local function reclaim(id)
  local entry = redis.call('XCLAIM', KEYS[1], group, consumer, 0, id)
  if entry[1] then
    local pending = redis.call('XPENDING', KEYS[1], group, id, id, 1)
    claimed(id, pending[1][4], entry[1][2])
  end
end
-- Nacked claims now visible (members: entry ids), then claims past their deadline (members:
-- entry id ':' delivery count).
if n < max then
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now, 'LIMIT', 0, max - n)) do
    redis.call('ZREM', KEYS[5], id)
    reclaim(id)
  end
end
if n < max then
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, max - n)) do
    redis.call('ZREM', KEYS[4], member)
    reclaim(string.match(member, '^[^:]+'))
  end
end
if n < max then
  local read = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', max - n, 'STREAMS', KEYS[1], '>')
  if read then
    for _, entry in ipairs(read[1][2]) do claimed(entry[1], 1, entry[2]) end
  end
end
if #deadlines > 0 then chunked('ZADD', KEYS[4], nil, deadlines) end
local nextDue = -1
for _, key in ipairs({KEYS[2], KEYS[5], KEYS[4]}) do
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if first[2] then
    local score = tonumber(first[2])
    if nextDue < 0 or score < nextDue then nextDue = score end
  end
end
local head = {now, nextDue}
for i = 1, #out do head[#head + 1] = out[i] end
return head
`
  }
).withReturnType<ReadonlyArray<unknown>>()

/**
 * The registration of what a subscription's blocking XREADGROUP read (sent
 * on the shared connection as soon as the reply is in, without waiting for
 * it): each entry read that is still pending and neither nacked nor given a
 * deadline already (an extend or the janitor came first) gets the deadline
 * now + `visibilityMs`. A settle that comes before it finds the claim live
 * (lua.ts `holds`). Returns how many deadlines it set.
 */
export const register = EffectRedis.script(
  (keys: QueueKeys, group: string, visibilityMs: number, entries: ReadonlyArray<string>) => [
    keys.stream,
    keys.inFlight,
    keys.retry,
    group,
    visibilityMs,
    ...entries
  ],
  {
    numberOfKeys: 3,
    lua: `${now}${chunked}
local group, vt = ARGV[1], tonumber(ARGV[2])
-- The entries of one read are consecutive in the stream: one range of the pending list holds
-- them, each with its delivery count as it stands now.
local pending = redis.call('XPENDING', KEYS[1], group, ARGV[3], ARGV[#ARGV], #ARGV - 2)
if #pending == 0 then return 0 end
local ids = {}
for _, p in ipairs(pending) do ids[#ids + 1] = p[1] end
local nacked = chunked('ZMSCORE', KEYS[3], nil, ids)
local deadlines = {}
local deadline = tostring(now + vt)
for i, p in ipairs(pending) do
  if not nacked[i] then
    deadlines[#deadlines + 1] = deadline
    deadlines[#deadlines + 1] = p[1] .. ':' .. p[4]
  end
end
local set = 0
if #deadlines > 0 then
  for _, added in ipairs(chunked('ZADD', KEYS[2], 'NX', deadlines)) do set = set + added end
end
return set
`
  }
).withReturnType<number>()
