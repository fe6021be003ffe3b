-- floodgate token bucket: one decision on one key, with the arithmetic of
-- golang.org/x/time/rate (and of floodgate's local buckets).
--
-- KEYS[1]  the bucket
-- ARGV     rate (tokens/s), burst, cost, mode: "0" a take; "-2" a peek,
--          which replies as a take and writes nothing (no key is created,
--          no TTL changes); "-1" a refund, which gives cost back, as
--          below, instead of taking it; n > 0 a take that also takes up to
--          n extra tokens (prefetch). A refund has a fifth argument, at:
--          the reply's at for the take that took the cost. A denied take,
--          as in rate.Limiter, changes no state, nor does a refund that
--          gives nothing back: they write nothing but, if a policy changed
--          since the last write, a longer TTL (below).
-- state    16 bytes, big-endian: 2 bytes (e + 1100) * 2 + sign, 7 bytes
--          |m| * 2^53, with tokens = m * 2^e as math.frexp splits them
--          (exact, no decimal formatting or parsing), then 7 bytes of last,
--          the Redis TIME of the last update in microseconds. No key: a
--          full bucket.
-- reply    {allowed, remaining, retry_after_ns, reset_after_ns, extra,
--          hold_ns, at}; for an admission, at is the Redis TIME in
--          microseconds before which the bucket could not have refilled
--          to burst had the take not happened: now + (burst - level) /
--          rate, rounded down, with level the bucket's before the take
--          and now the time the script decided at (never before the
--          bucket's last update); otherwise at is now
--
-- A refund gives back cost - rate * (now - at) tokens, if that is
-- positive, capped at burst: until at the bucket cannot have regained the
-- cost on its own, so all of it comes back; after at, the tokens it could
-- have regained since are not given twice. However late the refund comes,
-- admissions in any interval T stay within burst + rate * T.
--
-- Runs on Redis's Lua 5.1 and on miniredis's gopher-lua alike: string,
-- math and nothing else (gopher-lua has no struct, cmsgpack or bit).
-- numbers from strings by arithmetic coercion: the same strtod as tonumber,
-- without a function call
local rate = ARGV[1] + 0
local burst = ARGV[2] + 0
local cost = ARGV[3] + 0
local mode = ARGV[4]
local floor, ceil = math.floor, math.ceil
local MAXNS = 9007199254740992 -- 2^53: the largest exact integer reply

local extra, PEEK, REFUND = 0, mode == '-2', mode == '-1'
if mode ~= '0' and not PEEK and not REFUND then extra = tonumber(mode) end

local clock = redis.call('TIME')
local now = clock[1] * 1000000 + clock[2]

local tokens, last = burst, now
local state = redis.call('GET', KEYS[1])
if state then
  if #state ~= 16 then return redis.error_reply('floodgate: corrupt bucket state') end
  local e1, e2, m1, m2, m3, m4, m5, m6, m7, t1, t2, t3, t4, t5, t6, t7 = string.byte(state, 1, 16)
  local e = e1 * 256 + e2
  local sign = e % 2
  e = (e - sign) / 2 - 1100
  if e > 1024 or m1 > 31 or t1 > 31 then return redis.error_reply('floodgate: corrupt bucket state') end
  tokens = math.ldexp((((((m1 * 256 + m2) * 256 + m3) * 256 + m4) * 256 + m5) * 256 + m6) * 256 + m7, e - 53)
  if sign == 1 then tokens = -tokens end
  last = (((((t1 * 256 + t2) * 256 + t3) * 256 + t4) * 256 + t5) * 256 + t6) * 256 + t7
  if now < last then now = last end -- the clock stepped back (failover): keep the later time
elseif REFUND then
  return {1, burst, 0, 0, 0, 0, now} -- a refund to a full bucket: nothing to do
end

-- seconds is time.Duration.Seconds() on d (>= 0) nanoseconds:
-- float64(d / 1e9) + float64(d % 1e9) / 1e9, which is d / 1e9 under a
-- second.
local function seconds(d)
  local sec = floor(d / 1e9)
  local nsec = d - sec * 1e9
  if nsec < 0 then sec = sec - 1; nsec = nsec + 1e9 end
  if nsec >= 1e9 then sec = sec + 1; nsec = nsec - 1e9 end
  return sec + nsec / 1e9
end

-- advance: tokens += elapsed.Seconds() * rate, capped at burst (under a
-- second, inline: no function call on the common path)
local d = (now - last) * 1000
if d < 1e9 then
  tokens = tokens + d / 1e9 * rate
else
  tokens = tokens + seconds(d) * rate
end
if tokens > burst then tokens = burst end

local left = tokens - cost
local allowed, granted, hold, retry, at = 0, 0, 0, 0, now
local unchanged = false -- a denial, or a refund of nothing: no state is written
if REFUND then
  local taken = tonumber(ARGV[5])
  if not taken then
    return redis.error_reply('floodgate: refund without the time of its take')
  end
  -- less what the bucket regained since taken (a taken after now counts as now)
  local give = cost - seconds(math.max(now - taken, 0) * 1000) * rate
  if give <= 0 then -- regained on its own already: nothing to give, nothing to write
    allowed, left, unchanged = 1, tokens, true
  else
    allowed, left = 1, math.min(tokens + give, burst)
  end
elseif left < 0 and -left / rate * 1e9 >= 1 then
  retry = ceil(-left / rate * 1e9) -- denied: nothing changes, as in rate.Limiter
  if retry > MAXNS then retry = MAXNS end
  left, unchanged = tokens, true
else
  allowed = 1
  if extra > 0 and left >= 1 then
    granted = floor(left)
    if extra < granted then granted = extra end
    hold = floor((burst - tokens + cost) / rate * 1e9)
    if hold > MAXNS then hold = MAXNS end
    left = left - granted
  end
  at = now + floor((burst - tokens) / rate * 1e9 / 1000)
  if at > MAXNS then at = MAXNS end
end

local remaining = 0
if left > 0 then remaining = floor(left) end
local reset = (burst - left) / rate * 1e9
local resetns = ceil(reset)
if resetns > MAXNS then resetns = MAXNS end
if PEEK then -- read-only: the reply a take would get, nothing written
  return {allowed, remaining, retry, resetns, 0, 0, at}
end

-- the key lives until the bucket is full: ms, at least 1, at most 9e12
-- (285 years; miniredis keeps a TTL as a Go time.Duration, which holds
-- 292), formatted with %d: cheaper than Redis's %.17g of a Lua number
local ttl = ceil(reset / 1e6)
if ttl < 1 then ttl = 1 elseif ttl > 9e12 then ttl = 9e12 end

if unchanged then
  -- a denial changes no state, as in rate.Limiter, nor does a refund that
  -- gives nothing back: the stored level is not advanced (rewriting it
  -- would round it: a level of 3 read back as 2.99...), and the value is
  -- not written. Under the policy the bucket was last written with, the
  -- key already lives until the bucket is full; a policy changed since
  -- (SetPolicy) may put that later, and the bucket must not expire, full,
  -- before it: then, and only then, the TTL is extended (at most a
  -- millisecond of rounding otherwise, once).
  if state and redis.call('PTTL', KEYS[1]) < ttl then
    redis.call('PEXPIRE', KEYS[1], string.format('%d', ttl))
  end
  return {allowed, remaining, retry, resetns, 0, 0, at}
end

-- the state, as described above
local m, e = math.frexp(left)
e = (e + 1100) * 2
if m < 0 then m = -m; e = e + 1 end
m = m * 9007199254740992
local m7 = m % 256; m = (m - m7) / 256
local m6 = m % 256; m = (m - m6) / 256
local m5 = m % 256; m = (m - m5) / 256
local m4 = m % 256; m = (m - m4) / 256
local m3 = m % 256; m = (m - m3) / 256
local m2 = m % 256; m = (m - m2) / 256
local t = now
local t7 = t % 256; t = (t - t7) / 256
local t6 = t % 256; t = (t - t6) / 256
local t5 = t % 256; t = (t - t5) / 256
local t4 = t % 256; t = (t - t4) / 256
local t3 = t % 256; t = (t - t3) / 256
local t2 = t % 256; t = (t - t2) / 256
local e2 = e % 256

redis.call('SET', KEYS[1], string.char((e - e2) / 256, e2, m, m2, m3, m4, m5, m6, m7, t, t2, t3, t4, t5, t6, t7),
  'PX', string.format('%d', ttl))
return {allowed, remaining, retry, resetns, granted, hold, at}
