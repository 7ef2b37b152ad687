-- Named counted semaphores: the rules of sluicegate/store/semaphores.py (acquire_in,
-- release_in, renew_in), at the caller's clock, on the state kept as JSON text (the same
-- shape as SemaphoreState.to_json) in P..'sem:{NAME}'; P..'semaphores' is the set of names.
--
-- ARGV[3] operation, ARGV[4] semaphore name, then:
--   acquire: holder, limit, ttl, queue ('1'/'0'), wake address (a channel), info, waiter
--            ttl factor, yieldable ('1'/'0') -> {acquired (1/0), fencing token, expiry,
--            position, retry_at, behind, then per nudge: holder, channel}; a new waiter
--            nudges the yieldable holders (PUBLISH of their token on their channel)
--   release: holder -> {waiter, channel, ...}: the waiters woken (PUBLISH of their token
--            on their channel); a waiter whose channel nobody listens to any more (its
--            process is gone) leaves the queue and the next one is woken instead
--   renew:   ttl, holder... -> per holder its fencing token, 0 when it no longer holds
local op = ARGV[3]
local name = ARGV[4]
local key = P .. 'sem:{' .. name .. '}'

local raw = redis.call('GET', key)
local st
if raw then
  st = cjson.decode(raw)
else
  st = {name = name, limit = 1, token = 0, holders = {}, waiters = {}}
end
-- cjson gives an empty JSON array back as an empty table, which it writes as {}
local function list(t) if next(t) == nil then return {} end return t end
st.holders = list(st.holders)
st.waiters = list(st.waiters)

local function expire()
  local hs, ws = {}, {}
  for _, h in ipairs(st.holders) do if h[4] > NOW then table.insert(hs, h) end end
  for _, w in ipairs(st.waiters) do if w[3] > NOW then table.insert(ws, w) end end
  st.holders, st.waiters = hs, ws
end

local function save()
  local text = cjson.encode(st)
  -- empty lists must stay lists for the Python side's reading
  text = string.gsub(text, '"holders":{}', '"holders":[]')
  text = string.gsub(text, '"waiters":{}', '"waiters":[]')
  redis.call('SET', key, text)
  redis.call('SADD', P .. 'semaphores', name)
end

local function drop(id)
  local hs, ws = {}, {}
  for _, h in ipairs(st.holders) do if h[1] ~= id then table.insert(hs, h) end end
  for _, w in ipairs(st.waiters) do if w[1] ~= id then table.insert(ws, w) end end
  st.holders, st.waiters = hs, ws
end

expire()
local out = {}
if op == 'acquire' then
  local holder, limit, ttl = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
  local queue, address, info, factor = ARGV[8] == '1', ARGV[9], ARGV[10], tonumber(ARGV[11])
  local yieldable = ARGV[12] == '1'
  st.limit = limit
  for _, h in ipairs(st.holders) do
    if h[1] == holder then
      h[4] = NOW + ttl
      save()
      return {1, h[2], fmt(h[4]), 0, fmt(0), #st.waiters}
    end
  end
  local place = nil
  for i, w in ipairs(st.waiters) do if w[1] == holder then place = i break end end
  local ahead = place and (place - 1) or #st.waiters
  if limit - #st.holders > ahead then
    if place then table.remove(st.waiters, place) end
    st.token = st.token + 1
    table.insert(st.holders, {holder, st.token, NOW, NOW + ttl, info,
      yieldable and address or ''})
    save()
    return {1, st.token, fmt(NOW + ttl), 0, fmt(0), #st.waiters}
  end
  local retry = NOW + ttl
  for _, h in ipairs(st.holders) do if h[4] < retry then retry = h[4] end end
  if not queue then
    if place then table.remove(st.waiters, place) end
    save()
    return {0, 0, fmt(NOW), 0, fmt(retry), 0}
  end
  local expires = NOW + factor * ttl
  local nudges = {}
  if not place then
    table.insert(st.waiters, {holder, NOW, expires, address, info})
    place = #st.waiters
    for _, h in ipairs(st.holders) do
      if h[6] and h[6] ~= '' then
        redis.call('PUBLISH', h[6], h[1])
        table.insert(nudges, h[1])
        table.insert(nudges, h[6])
      end
    end
  else
    st.waiters[place][3] = expires
    if address ~= '' then st.waiters[place][4] = address end
  end
  save()
  local out = {0, 0, fmt(expires), place, fmt(retry), 0}
  for _, v in ipairs(nudges) do table.insert(out, v) end
  return out
elseif op == 'release' then
  drop(ARGV[5])
  local woken = {}
  while true do
    local free = st.limit - #st.holders
    local dead = nil
    for i = 1, math.min(free, #st.waiters) do
      local w = st.waiters[i]
      if not woken[w[1]] then
        if redis.call('PUBLISH', w[4], w[1]) > 0 then
          woken[w[1]] = true
          table.insert(out, w[1])
          table.insert(out, w[4])
        else
          dead = w[1]
          break
        end
      end
    end
    if not dead then break end
    drop(dead)
  end
  save()
  return out
elseif op == 'renew' then
  local ttl = tonumber(ARGV[5])
  for i = 6, #ARGV do
    local token = 0
    for _, h in ipairs(st.holders) do
      if h[1] == ARGV[i] then
        h[4] = NOW + ttl
        token = h[2]
      end
    end
    table.insert(out, token)
  end
  save()
  return out
end
return redis.error_reply('unknown semaphore operation ' .. op)
