/**
 * The settle scripts: ack, nack, extend and dead-letter a batch of receipts
 * of one queue, each receipt checked against the live claim in the same
 * atomic step (see scripts.ts for the invariant they keep).
 */
import * as EffectRedis from "effect/persistence/Redis"
import type { QueueKeys } from "./Keys.ts"
import { deletable, holds, now } from "./lua.ts"

/** Receipts as ARGV pairs: entry id, delivery count. */
type Pairs = ReadonlyArray<string>
/** Receipts with a duration each: entry id, delivery count, milliseconds. */
type Triples = ReadonlyArray<string | number>

/** Ack: XACK (+ XDEL, see deletable) of every receipt still holding its claim, in one call each; one 1/0 per receipt. */
export const ack = EffectRedis.script(
  (keys: QueueKeys, group: string, pairs: Pairs) => [keys.stream, keys.inFlight, keys.retry, group, ...pairs],
  {
    numberOfKeys: 3,
    lua: `${now}${holds(2, 3)}${deletable}
local done, members = {}, {}
local out = each_held(2, function(i, member)
  done[#done + 1] = ARGV[i]
  members[#members + 1] = member
end)
if #done > 0 then
  chunked('XACK', KEYS[1], ARGV[1], done)
  chunked('ZREM', KEYS[2], nil, members)
  if #others == 0 then
    chunked('XDEL', KEYS[1], nil, done)
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
    lua: `${now}${holds(2, 3)}
local earliest = -1
local out = each_held(3, function(i, member)
  local visibleAt = now + tonumber(ARGV[i + 2])
  redis.call('ZREM', KEYS[2], member)
  redis.call('ZADD', KEYS[3], visibleAt, ARGV[i])
  if earliest < 0 or visibleAt < earliest then earliest = visibleAt end
end)
if earliest >= 0 then redis.call('XADD', KEYS[4], 'MAXLEN', 1, '*', 'due', earliest) end
return out
`
  }
).withReturnType<ReadonlyArray<number>>()

/**
 * Extend: a held claim's deadline moves to now + its duration (a claim not yet registered gets
 * it here, and its registration keeps it). Triples: entry id, delivery count, duration ms.
 */
export const extend = EffectRedis.script(
  (keys: QueueKeys, group: string, triples: Triples) => [keys.stream, keys.inFlight, keys.retry, group, ...triples],
  {
    numberOfKeys: 3,
    lua: `${now}${holds(2, 3)}
return each_held(3, function(i, member)
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[i + 2]), member)
end)
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
    keys.retry,
    dlq.stream,
    group,
    ...pairs
  ],
  {
    numberOfKeys: 4,
    lua: `${now}${holds(2, 3)}${deletable}
if redis.call('EXISTS', KEYS[4]) == 0 then redis.call('XGROUP', 'CREATE', KEYS[4], ARGV[1], '0', 'MKSTREAM') end
return each_held(2, function(i, member)
  local id = ARGV[i]
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
    redis.call('XADD', KEYS[4], '*', unpack(copy))
  end
  redis.call('XACK', KEYS[1], ARGV[1], id)
  if deletable(id) then redis.call('XDEL', KEYS[1], id) end
  redis.call('ZREM', KEYS[2], member)
end)
`
  }
).withReturnType<ReadonlyArray<number>>()
