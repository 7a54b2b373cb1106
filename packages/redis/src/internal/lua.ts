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
 * KEYS[1] stream, KEYS[inFlight], KEYS[retry]; ARGV[1] group. True while the receipt names the
 * live claim: its pending delivery count is unchanged (every claim raises it) and it is neither
 * past its deadline nor nacked. A claim read by a subscription's blocking XREADGROUP has no
 * deadline until its registration (claimScripts.register, sent right after the read) has run; it is
 * live meanwhile, since only a registered claim can expire and be claimed again.
 */
export const holds = (inFlight: number, retry: number) => `
local function holds(id, count)
  local deadline = redis.call('ZSCORE', KEYS[${inFlight}], id)
  if deadline then
    if tonumber(deadline) <= now then return false end
  elseif redis.call('ZSCORE', KEYS[${retry}], id) then
    return false
  end
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  return pending[1] ~= nil and tostring(pending[1][4]) == count
end
-- Receipts from ARGV[2] on, \`stride\` arguments each (entry id, count, ...): \`settle(i)\` for
-- each one still held; one 1/0 per receipt.
local function each_held(stride, settle)
  local out = {}
  for i = 2, #ARGV, stride do
    if holds(ARGV[i], ARGV[i + 1]) then
      settle(i)
      out[#out + 1] = 1
    else
      out[#out + 1] = 0
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
