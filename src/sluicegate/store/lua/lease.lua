-- Counted leases: apply one holder's claims, in order, each by the rules of
-- sluicegate/store/coordination.py (claim_lease_in), at the caller's clock.
--
-- ARGV[3] holder, ARGV[4] ttl (seconds), ARGV[5] number of claims, then per claim:
-- name, want, limit, in_use, fair ('1' or '0').
-- Keys per lease NAME: P..'lease:{NAME}:held' (hash holder -> count), ':want' (hash
-- holder -> want), ':tok' (hash holder -> fencing token), ':exp' (zset holder ->
-- expiry, epoch seconds); P..'leases' (hash NAME -> last token given).
-- Returns per claim: granted, held, free, token, expiry (string), live holders, this
-- holder's rank among them by holder id (0 when it holds no entry).
local holder = ARGV[3]
local ttl = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local out = {}
for c = 0, n - 1 do
  local name = ARGV[6 + c * 5]
  local want = math.max(0, tonumber(ARGV[7 + c * 5]))
  local limit = math.max(0, tonumber(ARGV[8 + c * 5]))
  local in_use = math.max(0, tonumber(ARGV[9 + c * 5]))
  local fair = ARGV[10 + c * 5] == '1'
  local base = P .. 'lease:{' .. name .. '}:'
  local kheld, kwant, ktok, kexp = base .. 'held', base .. 'want', base .. 'tok', base .. 'exp'

  for _, h in ipairs(redis.call('ZRANGEBYSCORE', kexp, '-inf', NOW_S)) do
    redis.call('HDEL', kheld, h)
    redis.call('HDEL', kwant, h)
    redis.call('HDEL', ktok, h)
    redis.call('ZREM', kexp, h)
  end

  local held = {}
  local others, mine = 0, 0
  local counts = redis.call('HGETALL', kheld)
  for i = 1, #counts, 2 do
    local v = tonumber(counts[i + 1])
    held[counts[i]] = v
    if counts[i] == holder then mine = v else others = others + v end
  end

  local wants = {}
  local hungry = false
  local raw = redis.call('HGETALL', kwant)
  for i = 1, #raw, 2 do
    local h, w = raw[i], tonumber(raw[i + 1])
    if h ~= holder and w > 0 then
      table.insert(wants, {h, w})
      if w > (held[h] or 0) then hungry = true end
    end
  end

  local cap = limit
  if hungry and want > 0 and fair then
    table.insert(wants, {holder, want})
    table.sort(wants, function(a, b)
      if a[2] ~= b[2] then return a[2] < b[2] end
      return a[1] < b[1]
    end)
    local remaining = limit
    local m = #wants
    for i, entry in ipairs(wants) do
      local share = math.min(entry[2], math.floor(remaining / (m - i + 1)))
      if i == m then share = math.min(entry[2], remaining) end
      if entry[1] == holder then cap = share break end
      remaining = remaining - share
    end
  end

  local grant = math.max(0, math.min(want, cap, limit - others))
  local stored = math.max(grant, math.min(mine, in_use))
  local token = 0
  local expiry = NOW
  if stored == 0 and want <= 0 then
    redis.call('HDEL', kheld, holder)
    redis.call('HDEL', kwant, holder)
    redis.call('HDEL', ktok, holder)
    redis.call('ZREM', kexp, holder)
  else
    expiry = NOW + ttl
    if stored > 0 and mine == 0 then
      token = redis.call('HINCRBY', P .. 'leases', name, 1)
    elseif stored > 0 then
      token = tonumber(redis.call('HGET', ktok, holder) or '0')
    end
    redis.call('HSETNX', P .. 'leases', name, 0)
    redis.call('HSET', kheld, holder, stored)
    redis.call('HSET', kwant, holder, want)
    redis.call('HSET', ktok, holder, token)
    redis.call('ZADD', kexp, fmt(expiry), holder)
    -- the keys outlive their last holder's expiry by one ttl, then vanish by themselves
    local last = redis.call('ZRANGE', kexp, -1, -1, 'WITHSCORES')
    local ms = math.ceil((tonumber(last[2]) - NOW + ttl) * 1000)
    for _, k in ipairs({kheld, kwant, ktok, kexp}) do redis.call('PEXPIRE', k, ms) end
  end
  table.insert(out, grant)
  table.insert(out, stored)
  table.insert(out, limit - others - stored)
  table.insert(out, token)
  table.insert(out, fmt(expiry))
  local names = redis.call('ZRANGE', kexp, 0, -1)
  local rank = 0
  for _, h in ipairs(names) do
    if h < holder then rank = rank + 1 end
  end
  if redis.call('ZSCORE', kexp, holder) == false then rank = 0 end
  table.insert(out, #names)
  table.insert(out, rank)
end
return out
