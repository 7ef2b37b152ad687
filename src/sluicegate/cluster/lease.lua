-- sluicegate cluster: set one holder's share of one counted lease, atomically.
--
-- KEYS[1]  hash  holder -> count held (what the holder may have running)
-- KEYS[2]  zset  holder -> expiry, milliseconds of the server's clock
-- KEYS[3]  hash  holder -> count wanted (what the holder's core would run)
-- KEYS[4]  set   every lease name in use (for `sluicegate workers`)
-- ARGV[1]  holder id
-- ARGV[2]  want   (0 with in_use 0: release)
-- ARGV[3]  limit  (the lease's cluster-wide limit)
-- ARGV[4]  ttl in milliseconds
-- ARGV[5]  in_use: invocations the holder has running now (never taken back)
-- ARGV[6]  the lease's name, for KEYS[4]
-- ARGV[7]  1: fair (holders above their fair share give back while others wait);
--          0: first come, first served (a mutex: leader and shard leases)
--
-- Rules (see sluicegate/cluster/leases.py):
-- 1. holders whose expiry passed (server clock) are dropped first: their share is free.
-- 2. grant = min(want, limit - others, cap); cap is the holder's fair share (water
--    filling over every holder's want) when another holder wants more than it holds
--    and the lease is fair, else the limit: free capacity may be taken, and is given back when someone waits.
-- 3. the stored count is max(grant, min(held before, in_use)): a holder never gives back
--    slots its running invocations use, so the sum of stored counts never exceeds the
--    limit (a holder only grows into capacity nobody else holds).
-- Returns {grant, stored, free after, server time ms}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, h in ipairs(expired) do
  redis.call('HDEL', KEYS[1], h)
  redis.call('HDEL', KEYS[3], h)
  redis.call('ZREM', KEYS[2], h)
end
local holder = ARGV[1]
local want = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local in_use = tonumber(ARGV[5])
if limit < 0 then limit = 0 end

local held = {}
local others, mine = 0, 0
local counts = redis.call('HGETALL', KEYS[1])
for i = 1, #counts, 2 do
  local c = tonumber(counts[i + 1])
  held[counts[i]] = c
  if counts[i] == holder then mine = c else others = others + c end
end

local wants = {}
local hungry = false
local raw = redis.call('HGETALL', KEYS[3])
for i = 1, #raw, 2 do
  local h, w = raw[i], tonumber(raw[i + 1])
  if h ~= holder and w > 0 then
    table.insert(wants, {h, w})
    if w > (held[h] or 0) then hungry = true end
  end
end

local cap = limit
if hungry and want > 0 and ARGV[7] == '1' then
  table.insert(wants, {holder, want})
  table.sort(wants, function(a, b)
    if a[2] ~= b[2] then return a[2] < b[2] end
    return a[1] < b[1]
  end)
  local remaining = limit
  local n = #wants
  for i, entry in ipairs(wants) do
    local share = math.min(entry[2], math.floor(remaining / (n - i + 1)))
    -- the last ones in the order take the remainder of the division
    if i == n then share = math.min(entry[2], remaining) end
    if entry[1] == holder then cap = share break end
    remaining = remaining - share
  end
end

local grant = math.min(want, cap, limit - others)
if grant < 0 then grant = 0 end
local keep = math.min(mine, in_use)
local stored = math.max(grant, keep)

if stored == 0 and want <= 0 then
  redis.call('HDEL', KEYS[1], holder)
  redis.call('HDEL', KEYS[3], holder)
  redis.call('ZREM', KEYS[2], holder)
else
  redis.call('HSET', KEYS[1], holder, stored)
  redis.call('HSET', KEYS[3], holder, want)
  redis.call('ZADD', KEYS[2], now + ttl, holder)
  redis.call('SADD', KEYS[4], ARGV[6])
  -- the keys outlive their last holder's expiry by one ttl, then vanish by themselves
  local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  local gone = tonumber(last[2]) + ttl
  redis.call('PEXPIREAT', KEYS[1], gone)
  redis.call('PEXPIREAT', KEYS[2], gone)
  redis.call('PEXPIREAT', KEYS[3], gone)
end
return {grant, stored, limit - others - stored, now}
