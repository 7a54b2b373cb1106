/**
 * The Lua scripts that make each multi-key step atomic (the claim step and
 * the registration of a subscription's read: claimScripts.ts; settles:
 * settleScripts.ts): Redis runs a script alone, so a claim, a settle or a
 * move can never interleave with another client's. Time is the server's (`TIME`), the one clock every consumer of a
 * queue shares; deadlines in the sorted sets are server milliseconds.
 *
 * Invariant kept by every script: an entry in the group's pending list (PEL)
 * is in at most one of `inFlight` (claimed, scored by its deadline) or
 * `retry` (nacked, scored by when it is visible again), and in neither only
 * between a subscription's read and its registration (or, when that was
 * lost, until the janitor's next run). A receipt is the entry
 * id and the PEL delivery count of its claim: every claim (XREADGROUP or
 * XCLAIM) raises the count, so an older receipt can never match a newer claim.
 */
import * as EffectRedis from "effect/persistence/Redis"
import type { QueueKeys } from "./Keys.ts"
import { keysOf, now } from "./lua.ts"

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
 * -1 alone when the queue does not exist. Claims are counted from the pending list, so a claim
 * not yet registered (claimScripts.register) is in flight too.
 */
export const stats = EffectRedis.script(
  (keys: QueueKeys, dlq: QueueKeys, group: string) => [...keysOf(keys), dlq.stream, group],
  {
    numberOfKeys: 6,
    lua: `${now}
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local length = redis.call('XLEN', KEYS[1])
local ok, summary = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1])
local pending = 0
if ok then pending = summary[1] end
local nacked, delayed = redis.call('ZCARD', KEYS[5]), redis.call('ZCARD', KEYS[2])
local expired = redis.call('ZCOUNT', KEYS[4], '-inf', now)
local retryDue = redis.call('ZCOUNT', KEYS[5], '-inf', now)
local delayedDue = redis.call('ZCOUNT', KEYS[2], '-inf', now)
local oldest = -1
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if first[1] then oldest = now - tonumber(string.match(first[1][1], '^(%d+)')) end
return {
  length + delayed,
  length - pending + expired + retryDue + delayedDue,
  pending - nacked - expired,
  delayed - delayedDue + nacked - retryDue,
  oldest,
  redis.call('XLEN', KEYS[6])
}
`
  }
).withReturnType<ReadonlyArray<number>>()
