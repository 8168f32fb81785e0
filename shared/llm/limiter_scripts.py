"""Lua scripts of the fleet limiter (shared/llm/limiter.py), one atomic step each.

KEYS, in every script: requests zset, input hash, output hash, pause string, waiters zset,
advertised-limits hash (what the API's rate-limit headers last said), ramp start string.
"""

from __future__ import annotations

from typing import Final

# Shared helpers. Numbers are formatted with %.0f because Lua's default number-to-string
# conversion keeps 14 significant digits, which would truncate epoch microseconds.
PRELUDE: Final = """
local function fmt(x) return string.format('%.0f', x) end
local function clock(arg)
  if arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function chunked(cmd, key, items)
  -- unpack() of a long list overflows the Lua C stack, so send at most 500 items per call.
  local out = {}
  for i = 1, #items, 500 do
    local part = redis.call(cmd, key, unpack(items, i, math.min(i + 499, #items)))
    if type(part) == 'table' then
      for _, v in ipairs(part) do out[#out + 1] = v end
    end
  end
  return out
end
local function lowest(ours, advertised)
  -- ours < 0 means "no limit of our own"; advertised is a header value or false.
  local theirs = tonumber(advertised)
  if not theirs then return ours end
  if ours < 0 then return theirs end
  return math.min(ours, theirs)
end
local function sum(values)
  local total = 0
  for i = 1, #values do total = total + (tonumber(values[i]) or 0) end
  return total
end
"""

# ARGV: now ('' = TIME), window us, request limit, input limit (-1 none), output limit (-1 none),
#       estimated input, estimated output, reservation id, waiter id, waiter lease slack us,
#       ramp us (0 = none).
# Each limit is the lower of ours and the one the API last advertised (the most restrictive
# wins). After an idle window the request limit ramps from 10 % to 100 % over the ramp time.
# Returns {granted 1|0, wait us, now us}.
ACQUIRE_LUA: Final = """
local now = clock(ARGV[1])
local window = tonumber(ARGV[2])

local function park(wait)
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', fmt(now))
  redis.call('ZADD', KEYS[5], fmt(now + wait + tonumber(ARGV[10])), ARGV[9])
  -- Expire with the longest lease; PEXPIRE GT would never set a TTL on a fresh key.
  local last = redis.call('ZRANGE', KEYS[5], -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', KEYS[5], fmt(math.ceil((tonumber(last[2]) - now) / 1000)))
  return {0, wait, now}
end

local function prune()
  local cutoff = fmt(now - window)
  local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff)
  if #expired == 0 then return end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
  chunked('HDEL', KEYS[2], expired)
  chunked('HDEL', KEYS[3], expired)
end

local function request_wait(limit)
  local count = redis.call('ZCARD', KEYS[1])
  if count < limit then return 0 end
  -- The (count - limit)-th oldest reservation must leave before one more fits.
  local entry = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
  return tonumber(entry[2]) + window - now
end

local function token_wait(hash, limit, estimate)
  if limit < 0 then return 0 end
  local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  local ids, scores = {}, {}
  for i = 1, #entries, 2 do
    ids[#ids + 1] = entries[i]
    scores[#scores + 1] = tonumber(entries[i + 1])
  end
  local amounts = chunked('HMGET', hash, ids)
  local used = sum(amounts)
  if used + estimate <= limit then return 0 end
  -- Oldest first: we can go once enough tokens have left the window.
  for i = 1, #ids do
    used = used - (tonumber(amounts[i]) or 0)
    if used + estimate <= limit then return scores[i] + window - now end
  end
  return window
end

local function ramp_wait(limit)
  local ramp = tonumber(ARGV[11])
  if ramp <= 0 then return 0 end
  local count = redis.call('ZCARD', KEYS[1])
  if count == 0 and redis.call('EXISTS', KEYS[7]) == 0 then
    redis.call('SET', KEYS[7], fmt(now), 'PX', fmt(math.ceil((ramp + window) / 1000)))
  end
  local start = tonumber(redis.call('GET', KEYS[7]) or '')
  if not start or count == 0 or (count + 1) <= 0.1 * limit then return 0 end
  -- The ramp admits limit * (t - start) / ramp requests by time t.
  return start + ramp * (count + 1) / limit - now
end

local pause = redis.call('GET', KEYS[4])
if pause then
  local until_us = tonumber(string.match(pause, '^%d+'))
  if until_us and until_us > now then return park(until_us - now) end
end
local advertised = redis.call('HMGET', KEYS[6], 'requests', 'input', 'output')
local request_limit = lowest(tonumber(ARGV[3]), advertised[1])
local input_limit = lowest(tonumber(ARGV[4]), advertised[2])
local output_limit = lowest(tonumber(ARGV[5]), advertised[3])
local est_input = tonumber(ARGV[6])
local est_output = tonumber(ARGV[7])
if input_limit >= 0 then est_input = math.min(est_input, input_limit) end
if output_limit >= 0 then est_output = math.min(est_output, output_limit) end
prune()
local wait = math.max(
  request_wait(request_limit),
  ramp_wait(request_limit),
  token_wait(KEYS[2], input_limit, est_input),
  token_wait(KEYS[3], output_limit, est_output))
if wait > 0 then return park(wait) end
redis.call('ZADD', KEYS[1], fmt(now), ARGV[8])
redis.call('HSET', KEYS[2], ARGV[8], fmt(est_input))
redis.call('HSET', KEYS[3], ARGV[8], fmt(est_output))
local ttl = fmt(math.ceil(window / 1000) + 1000)
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ttl) end
redis.call('ZREM', KEYS[5], ARGV[9])
return {1, 0, now}
"""

# ARGV: reservation id, actual input, actual output. Returns 1 if the reservation was still live.
SETTLE_LUA: Final = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
return 1
"""

# ARGV: now ('' = TIME), pause us, reason. Keeps the later of the current and the new pause.
# Returns {changed 1|0, paused until us}.
PAUSE_LUA: Final = """
local now = clock(ARGV[1])
local until_us = now + tonumber(ARGV[2])
local current = redis.call('GET', KEYS[4])
if current then
  local current_until = tonumber(string.match(current, '^%d+'))
  if current_until and current_until >= until_us then return {0, current_until} end
end
local ttl = fmt(math.ceil((until_us - now) / 1000))
redis.call('SET', KEYS[4], fmt(until_us) .. '|' .. ARGV[3], 'PX', ttl)
return {1, until_us}
"""

# ARGV: now ('' = TIME), window us.
# Returns {now, used, oldest us (-1 none), input used, output used, waiting, pause value or '',
#          advertised request/input/output limits (-1 none)}.
STATUS_LUA: Final = """
local now = clock(ARGV[1])
local entries = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. fmt(now - tonumber(ARGV[2])), '+inf',
  'WITHSCORES')
local ids = {}
for i = 1, #entries, 2 do ids[#ids + 1] = entries[i] end
local oldest = -1
if #entries > 0 then oldest = tonumber(entries[2]) end
local input_used = sum(chunked('HMGET', KEYS[2], ids))
local output_used = sum(chunked('HMGET', KEYS[3], ids))
local waiting = redis.call('ZCOUNT', KEYS[5], '(' .. fmt(now), '+inf')
local pause = redis.call('GET', KEYS[4]) or ''
local advertised = redis.call('HMGET', KEYS[6], 'requests', 'input', 'output')
for i = 1, 3 do advertised[i] = tonumber(advertised[i]) or -1 end
return {now, #ids, oldest, input_used, output_used, waiting, pause,
        advertised[1], advertised[2], advertised[3]}
"""
