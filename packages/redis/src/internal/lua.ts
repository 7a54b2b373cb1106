/**
 * Lua fragments shared by the scripts (scripts.ts, claimScripts.ts, settleScripts.ts): the
 * server's time, the check that a receipt still names the live claim, and
 * whether an acked entry may be deleted.
 */
import type { QueueKeys } from "./Keys.ts"

export const now = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

/**
 * Commands with one argument per member (ZADD, ZMSCORE) over many members, in chunks: `unpack`
 * of a table longer than Lua's C stack (8000 slots) fails. One chunk (the usual case) is one call
 * whose reply is returned as it is, not copied.
 */
export const chunked = `
local function chunked(command, key, flag, args)
  if #args <= 1000 then
    local reply
    if flag then reply = redis.call(command, key, flag, unpack(args)) else reply = redis.call(command, key, unpack(args)) end
    if type(reply) == 'table' then return reply end
    return {reply}
  end
  local out = {}
  for i = 1, #args, 1000 do
    local part
    if flag then
      part = redis.call(command, key, flag, unpack(args, i, math.min(i + 999, #args)))
    else
      part = redis.call(command, key, unpack(args, i, math.min(i + 999, #args)))
    end
    if type(part) == 'table' then
      for _, v in ipairs(part) do out[#out + 1] = v end
    else
      out[#out + 1] = part
    end
  end
  return out
end
`

/**
 * KEYS[1] stream, KEYS[inFlight], KEYS[retry]; ARGV[1] group. A receipt (entry id, count) names
 * the live claim while its \`inFlight\` member \`<id>:<count>\` is scored by a deadline not yet
 * passed: only a claim step, the registration, an extend or the janitor add that member, each
 * with the count of the claim as it stands in the pending list, and every settle or re-claim
 * removes it, so its presence proves owner and count without asking the pending list. A receipt
 * with no member is the claim of a subscription's read whose registration (claimScripts.register,
 * sent right after the read) has not run yet, or a stale one: it is live when it is not nacked
 * and its pending delivery count is unchanged (every claim raises it; only a claim with a
 * deadline can expire and be claimed again). A receipt repeated in one call settles once.
 * \`each_held(stride, settle)\`: receipts from ARGV[2] on, \`stride\` arguments each (entry id,
 * count, ...); \`settle(i, member)\` for each one still held; one 1/0 per receipt.
 */
export const holds = (inFlight: number, retry: number) => `${chunked}
local function each_held(stride, settle)
  local members = {}
  for i = 2, #ARGV, stride do members[#members + 1] = ARGV[i] .. ':' .. ARGV[i + 1] end
  local deadlines = chunked('ZMSCORE', KEYS[${inFlight}], nil, members)
  local out, seen, n = {}, {}, 0
  for i = 2, #ARGV, stride do
    n = n + 1
    local member, live = members[n], false
    if seen[member] then
      live = false
    elseif deadlines[n] then
      live = tonumber(deadlines[n]) > now
    elseif not redis.call('ZSCORE', KEYS[${retry}], ARGV[i]) then
      local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
      live = pending[1] ~= nil and tostring(pending[1][4]) == ARGV[i + 1]
    end
    seen[member] = true
    if live then
      settle(i, member)
      out[n] = 1
    else
      out[n] = 0
    end
  end
  return out
end
`

/**
 * KEYS[1] stream; ARGV[1] our group. An acked entry is deleted from the stream
 * unless another group still needs it (not yet delivered to it, or pending in
 * it); the last group to settle it deletes it.
 */
export const deletable = `
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

export const keysOf = (keys: QueueKeys) => [keys.stream, keys.delayed, keys.wake, keys.inFlight, keys.retry]
