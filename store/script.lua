-- floodgate token bucket: one decision on one key, with the arithmetic of
-- golang.org/x/time/rate (and of floodgate's local buckets).
--
-- KEYS[1]  the bucket
-- ARGV     rate (tokens/s), burst, cost, extra (tokens to prefetch; -1:
--          a refund, which gives cost back instead of taking it)
-- state    "tokens last" as a string: tokens a float, last the Redis TIME
--          of the last update in microseconds; written with %.17g so the
--          float survives the round trip exactly. No key: a full bucket.
-- reply    {allowed, remaining, retry_after_ns, reset_after_ns, extra, hold_ns}
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local extra = tonumber(ARGV[4])
local MAXNS = 9007199254740992 -- 2^53: the largest exact integer reply

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local tokens, last = burst, now
local state = redis.call('GET', KEYS[1])
if extra < 0 and not state then
  return {1, burst, 0, 0, 0, 0} -- a refund to a full bucket: nothing to do
end
if state then
  local a, b = string.match(state, '^(%S+) (%S+)$')
  tokens, last = tonumber(a), tonumber(b)
  if not tokens or not last then
    return redis.error_reply('floodgate: corrupt bucket state')
  end
end
if now < last then now = last end -- the clock stepped back (failover): keep the later time

-- advance: tokens += elapsed.Seconds() * rate, capped at burst, where
-- Seconds() is float64(d / 1e9) + float64(d % 1e9) / 1e9 on nanoseconds.
local d = (now - last) * 1000
local sec = math.floor(d / 1e9)
local nsec = d - sec * 1e9
if nsec < 0 then sec = sec - 1; nsec = nsec + 1e9 end
if nsec >= 1e9 then sec = sec + 1; nsec = nsec - 1e9 end
tokens = math.min(tokens + (sec + nsec / 1e9) * rate, burst)

local function ns(tk) return tk / rate * 1e9 end
local function ceilns(tk) return math.min(math.ceil(ns(tk)), MAXNS) end

local left = tokens - cost
local allowed, granted, hold, retry = 0, 0, 0, 0
if extra < 0 then
  allowed, left = 1, math.min(tokens + cost, burst)
elseif left < 0 and ns(-left) >= 1 then
  retry = ceilns(-left) -- denied: the level is kept, advanced to now
  left = tokens
else
  allowed = 1
  if extra > 0 and left >= 1 then
    granted = math.min(extra, math.floor(left))
    hold = math.min(math.floor(ns(burst - tokens + cost)), MAXNS)
    left = left - granted
  end
end

local ttl = math.max(math.ceil(ns(burst - left) / 1e6), 1) -- ms until full
redis.call('SET', KEYS[1], string.format('%.17g %.17g', left, now), 'PX', math.min(ttl, 1e13))
local remaining = 0
if left > 0 then remaining = math.floor(left) end
return {allowed, remaining, retry, ceilns(burst - left), granted, hold}
