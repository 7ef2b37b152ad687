-- receive: ARGV[3] queue, [4] max messages, [5] visibility deadline, [6] token.
-- Expire, dead-letter, make due messages visible, then claim.
-- Returns {status, moved, dead-letter queue, then per message: key, blob, receive count,
-- first receive, sent, group}; status 1: no such queue.
local m = qmeta(ARGV[3])
if not m then return {1} end
local q = m.name
local max = tonumber(ARGV[4])
local DEADLINE = ARGV[5]
local TOKEN = ARGV[6]
expire(m)
local dl = dlqmeta(m)
local limit = m.mrc
local moved = 0
if m.rcheck then
  redis.call('HSET', qk(q, 'meta'), 'rcheck', '0')
  if dl then
    local visible
    if m.fifo then
      visible = {}
      for _, member in ipairs(redis.call('ZRANGE', qk(q, 'gv'), 0, -1)) do
        visible[#visible + 1] = string.sub(member, -MKLEN)
      end
    else
      visible = redis.call('ZRANGE', qk(q, 'ready'), 0, -1)
    end
    for _, mk in ipairs(visible) do
      local s = getst(m, mk)
      if s.count >= limit then
        move(m, mk, s, dl, q)
        moved = moved + 1
      end
    end
  end
end
local due = redis.call('ZRANGEBYSCORE', qk(q, 'infl'), '-inf', NOW_S)
for _, mk in ipairs(due) do
  local s = getst(m, mk)
  if dl and s.count >= limit then
    move(m, mk, s, dl, q)
    moved = moved + 1
  else
    redis.call('ZREM', qk(q, 'infl'), mk)
    show(m, mk, s, redis.call('ZSCORE', qk(q, 'sent'), mk))
    if m.fifo then settle(m, s.group) end
  end
end
due = redis.call('ZRANGEBYSCORE', qk(q, 'dly'), '-inf', NOW_S)
for _, mk in ipairs(due) do
  local s = getst(m, mk)
  redis.call('ZREM', qk(q, 'dly'), mk)
  show(m, mk, s, redis.call('ZSCORE', qk(q, 'sent'), mk))
end
if moved > 0 then redis.call('HINCRBY', qk(q, 'meta'), 'dl', moved) end
local out = {0, moved, dl and dl.name or ''}

local function claimed(mk, v, blob, sent)
  local s = parsest(v or FRESH)
  s.count = s.count + 1
  if s.first == '' then s.first = NOW_S end
  s.token = TOKEN
  local n = #out
  out[n + 1] = mk
  out[n + 2] = blob
  out[n + 3] = s.count
  out[n + 4] = s.first
  out[n + 5] = sent
  out[n + 6] = s.group
  return stval(s)
end

if not m.fifo then
  local popped = redis.call('ZPOPMIN', qk(q, 'ready'), max)
  local n = #popped / 2
  if n == 0 then return out end
  local keys = {}
  for i = 1, n do keys[i] = popped[2 * i - 1] end
  local sts = redis.call('HMGET', qk(q, 'st'), unpack(keys))
  local blobs = redis.call('HMGET', qk(q, 'm'), unpack(keys))
  local hset, zadd = {}, {}
  for i = 1, n do
    local mk = keys[i]
    hset[2 * i - 1] = mk
    hset[2 * i] = claimed(mk, sts[i], blobs[i], popped[2 * i])
    zadd[2 * i - 1] = DEADLINE
    zadd[2 * i] = mk
  end
  redis.call('HSET', qk(q, 'st'), unpack(hset))
  redis.call('ZADD', qk(q, 'infl'), unpack(zadd))
  return out
end

local taken = 0
while taken < max do
  local o = redis.call('ZPOPMIN', qk(q, 'offers'), 1)
  if #o == 0 then break end
  local g = string.sub(o[1], MKLEN + 2)
  redis.call('HDEL', qk(q, 'offer'), g)
  local items = redis.call('ZRANGEBYLEX', qk(q, 'gv'), glow(g), ghigh(g), 'LIMIT', 0, max - taken)
  if #items > 0 then
    redis.call('ZREM', qk(q, 'gv'), unpack(items))
    for _, item in ipairs(items) do
      local mk = string.sub(item, #g + 2)
      local v = redis.call('HGET', qk(q, 'st'), mk)
      local blob = redis.call('HGET', qk(q, 'm'), mk)
      local sent = redis.call('ZSCORE', qk(q, 'sent'), mk)
      redis.call('HSET', qk(q, 'st'), mk, claimed(mk, v, blob, sent))
      redis.call('ZADD', qk(q, 'infl'), DEADLINE, mk)
    end
    redis.call('HSET', qk(q, 'gbusy'), g, #items)
    taken = taken + #items
  end
end
return out
