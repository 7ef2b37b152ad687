-- Table items: the rules of sluicegate/store/items.py at the caller's clock.
-- An item is the hash P..'item:{TABLE}:KEY' (s status, d data, e expiry, p in-progress
-- expiry or '', v version); P..'item:{TABLE}' counts the table's versions. An item past
-- e, or past p when p is set, is dead: treated as absent. Redis drops an item's key a
-- minute after its expiry (garbage collection only: liveness follows the store's clock).
--
-- ARGV[3] operation, ARGV[4] table, ARGV[5] key, then:
--   create, put: status, data, ttl, in-progress ttl ('' none)
--   update:      status ('' keep), data, keep data ('1'/'0'), ttl ('' keep),
--                in-progress ('keep', '' clear, or a ttl), if version ('' any),
--                if status ('' any)
--   delete:      if version ('' any)
--   get:         nothing
-- Replies: create and update {written (1/0), then the live item's s, d, e, p, v, or
-- nothing when none}; put and get the item's {1, s, d, e, p, v} ({0} for get when
-- none); delete {1} or {0}.
local op = ARGV[3]
local tbl = ARGV[4]
local rk = P .. 'item:{' .. tbl .. '}:' .. ARGV[5]
local ck = P .. 'item:{' .. tbl .. '}'

local function live()
  local f = redis.call('HMGET', rk, 's', 'd', 'e', 'p', 'v')
  if not f[1] then return nil end
  local e = tonumber(f[3])
  if e <= NOW then return nil end
  if f[4] ~= '' and tonumber(f[4]) <= NOW then return nil end
  return {s = f[1], d = f[2], e = f[3], p = f[4], v = f[5]}
end

local function reply(written, r)
  if not r then return {written} end
  return {written, r.s, r.d, r.e, r.p, r.v}
end

local function write(r)
  r.v = tostring(redis.call('INCR', ck))
  redis.call('HSET', rk, 's', r.s, 'd', r.d, 'e', r.e, 'p', r.p, 'v', r.v)
  local ms = math.ceil((tonumber(r.e) - NOW) * 1000) + 60000
  redis.call('PEXPIRE', rk, ms)
  return r
end

local function fresh(i)
  local ttl = tonumber(ARGV[i + 2])
  local p = ''
  if ARGV[i + 3] ~= '' then p = fmt(NOW + tonumber(ARGV[i + 3])) end
  return {s = ARGV[i], d = ARGV[i + 1], e = fmt(NOW + ttl), p = p}
end

if op == 'get' then
  local held = live()
  if not held then return {0} end
  return reply(1, held)
elseif op == 'create' then
  local held = live()
  if held then return reply(0, held) end
  return reply(1, write(fresh(6)))
elseif op == 'put' then
  return reply(1, write(fresh(6)))
elseif op == 'update' then
  local held = live()
  if not held then return {0} end
  if (ARGV[11] ~= '' and held.v ~= ARGV[11]) or (ARGV[12] ~= '' and held.s ~= ARGV[12]) then
    return reply(0, held)
  end
  if ARGV[6] ~= '' then held.s = ARGV[6] end
  if ARGV[8] == '0' then held.d = ARGV[7] end
  if ARGV[9] ~= '' then held.e = fmt(NOW + tonumber(ARGV[9])) end
  if ARGV[10] ~= 'keep' then
    if ARGV[10] == '' then held.p = '' else held.p = fmt(NOW + tonumber(ARGV[10])) end
  end
  return reply(1, write(held))
elseif op == 'delete' then
  local held = live()
  if not held then
    redis.call('DEL', rk) -- a dead item goes at once
    return {0}
  end
  if ARGV[6] ~= '' and held.v ~= ARGV[6] then return {0} end
  redis.call('DEL', rk)
  return {1}
end
return redis.error_reply('items.lua: unknown operation ' .. tostring(op))
