-- floodgate token bucket: one decision on one key, with the arithmetic of
-- golang.org/x/time/rate (and of floodgate's local buckets).
--
-- KEYS[1]  the bucket
-- ARGV     rate (tokens/s), burst, cost, extra (tokens to prefetch; -1:
--          a refund, which gives cost back, as below, instead of taking
--          it; -2: a peek, which replies as a take of cost with no extra
--          would and writes nothing: no key is created, no TTL changes),
--          and for a refund only, at: the reply's at for the take that
--          took the cost
-- state    "tokens last" as a string: tokens a float, last the Redis TIME
--          of the last update in microseconds; written with %.17g so the
--          float survives the round trip exactly. No key: a full bucket.
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
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local extra = tonumber(ARGV[4])
local MAXNS = 9007199254740992 -- 2^53: the largest exact integer reply

local PEEK = extra == -2
if PEEK then extra = 0 end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local tokens, last = burst, now
local state = redis.call('GET', KEYS[1])
if extra < 0 and not state then
  return {1, burst, 0, 0, 0, 0, now} -- a refund to a full bucket: nothing to do
end
if state then
  local a, b = string.match(state, '^(%S+) (%S+)$')
  tokens, last = tonumber(a), tonumber(b)
  if not tokens or not last then
    return redis.error_reply('floodgate: corrupt bucket state')
  end
end
if now < last then now = last end -- the clock stepped back (failover): keep the later time

-- seconds(us) is time.Duration.Seconds() of us microseconds (us >= 0):
-- float64(d / 1e9) + float64(d % 1e9) / 1e9 on nanoseconds.
local function seconds(us)
  local d = us * 1000
  local sec = math.floor(d / 1e9)
  local nsec = d - sec * 1e9
  if nsec < 0 then sec = sec - 1; nsec = nsec + 1e9 end
  if nsec >= 1e9 then sec = sec + 1; nsec = nsec - 1e9 end
  return sec + nsec / 1e9
end

-- advance: tokens += elapsed.Seconds() * rate, capped at burst.
tokens = math.min(tokens + seconds(now - last) * rate, burst)

local function ns(tk) return tk / rate * 1e9 end
local function ceilns(tk) return math.min(math.ceil(ns(tk)), MAXNS) end

local left = tokens - cost
local allowed, granted, hold, retry, at = 0, 0, 0, 0, now
if extra < 0 then
  local taken = tonumber(ARGV[5])
  if not taken then
    return redis.error_reply('floodgate: refund without the time of its take')
  end
  local give = cost - seconds(math.max(now - taken, 0)) * rate -- a taken after now counts as now
  if give <= 0 then -- regained on its own already: nothing to give, nothing to write
    return {1, math.max(math.floor(tokens), 0), 0, ceilns(burst - tokens), 0, 0, now}
  end
  allowed, left = 1, math.min(tokens + give, burst)
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
  at = math.min(now + math.floor(ns(burst - tokens) / 1000), MAXNS)
end

if PEEK then -- read-only: the reply a take would get, nothing written
  local remaining = 0
  if left > 0 then remaining = math.floor(left) end
  return {allowed, remaining, retry, ceilns(burst - left), 0, 0, at}
end

-- the key lives until the bucket is full: ms, at most 9e12 (285 years;
-- miniredis keeps a TTL as a Go time.Duration, which holds 292)
local ttl = math.min(math.max(math.ceil(ns(burst - left) / 1e6), 1), 9e12)
redis.call('SET', KEYS[1], string.format('%.17g %.17g', left, now), 'PX', ttl)
local remaining = 0
if left > 0 then remaining = math.floor(left) end
return {allowed, remaining, retry, ceilns(burst - left), granted, hold, at}
