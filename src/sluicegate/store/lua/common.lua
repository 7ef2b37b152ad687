-- sluicegate Redis store: helpers every script starts with (see redis.py for the data model).
--
-- ARGV[1] is the key prefix, ARGV[2] the store clock's "now" (epoch seconds, as Python's
-- repr wrote it): scripts never read Redis TIME. Numbers that go back into Redis as
-- strings are formatted with %.17g (Lua's own tostring keeps 14 digits only).
local P = ARGV[1]
local NOW_S = ARGV[2]
local NOW = tonumber(NOW_S)
local MKLEN = 53 -- a message key: 16-digit sequence, ':', 36-character message id

local function fmt(x) return string.format('%.17g', x) end
local function qk(q, part) return P .. '{q:' .. q .. '}:' .. part end
local function sk(s, part) return P .. '{s:' .. s .. '}:' .. part end

local QUEUE_FIELDS = {'vt', 'delay', 'ret', 'size', 'wait', 'dlq', 'mrc', 'cbd', 'ver'}
local QUEUE_PARTS = {'meta', 'm', 'st', 'sent', 'ready', 'infl', 'dly', 'gv', 'offers',
  'offer', 'gbusy', 'gcount', 'dedup', 'dedupx'}

-- A queue's attributes the scripts need, or nil when it does not exist.
local function qmeta(q)
  local v = redis.call('HMGET', qk(q, 'meta'), 'ret', 'dlq', 'mrc', 'rcheck', 'delay', 'ver')
  if not v[1] then return nil end
  return {name = q, ret = tonumber(v[1]), dlq = v[2] ~= '' and v[2] or nil,
    mrc = tonumber(v[3]) or 0, rcheck = v[4] == '1', delay = tonumber(v[5]), ver = v[6],
    fifo = string.sub(q, -5) == '.fifo'}
end

-- Message state: "count|first_receive|token|source_queue|group".
local function parsest(v)
  local c, f, t, src, g = string.match(v, '^(%d+)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
  return {count = tonumber(c), first = f, token = t, source = src, group = g}
end
-- A standard queue's message never received has no state stored (saves a write per send).
local FRESH = '0||||'
local function getst(m, mk)
  return parsest(redis.call('HGET', qk(m.name, 'st'), mk) or FRESH)
end
local function stval(s)
  return string.format('%d', s.count) .. '|' .. s.first .. '|' .. s.token .. '|' .. s.source
    .. '|' .. s.group
end
local function putst(m, mk, s) redis.call('HSET', qk(m.name, 'st'), mk, stval(s)) end

-- Run cmd on key with the items of list as arguments, in slices (unpack has a limit of a
-- few thousand values); returns the replies concatenated, or the integer replies summed.
local SLICE = 1000
local function sliced(cmd, key, list)
  local out, sum = {}, 0
  for i = 1, #list, SLICE do
    local reply = redis.call(cmd, key, unpack(list, i, math.min(i + SLICE - 1, #list)))
    if type(reply) == 'table' then
      for j = 1, #list - i + 1 do
        if j > SLICE then break end
        out[i + j - 1] = reply[j]
      end
    else
      sum = sum + reply
    end
  end
  return out, sum
end

local function glow(g) return '[' .. g .. '\0' end
local function ghigh(g) return '(' .. g .. '\1' end

-- List a FIFO group that is not in flight under its first visible message (sent time,
-- then sequence), or unlist it when it has none.
local function offer(m, g)
  if redis.call('HEXISTS', qk(m.name, 'gbusy'), g) == 1 then return end
  local head = redis.call('ZRANGEBYLEX', qk(m.name, 'gv'), glow(g), ghigh(g), 'LIMIT', 0, 1)
  local old = redis.call('HGET', qk(m.name, 'offer'), g)
  if #head == 0 then
    if old then
      redis.call('ZREM', qk(m.name, 'offers'), old)
      redis.call('HDEL', qk(m.name, 'offer'), g)
    end
    return
  end
  local hmk = string.sub(head[1], #g + 2)
  local member = hmk .. '\0' .. g
  if old == member then return end
  if old then redis.call('ZREM', qk(m.name, 'offers'), old) end
  redis.call('ZADD', qk(m.name, 'offers'), redis.call('ZSCORE', qk(m.name, 'sent'), hmk), member)
  redis.call('HSET', qk(m.name, 'offer'), g, member)
end

-- One in-flight message of group g left flight.
local function settle(m, g)
  if redis.call('HINCRBY', qk(m.name, 'gbusy'), g, -1) <= 0 then
    redis.call('HDEL', qk(m.name, 'gbusy'), g)
    offer(m, g)
  end
end

-- Make a stored message visible (it is in no visibility index).
local function show(m, mk, s, sent)
  if m.fifo then
    redis.call('ZADD', qk(m.name, 'gv'), 0, s.group .. '\0' .. mk)
    offer(m, s.group)
  else
    redis.call('ZADD', qk(m.name, 'ready'), sent, mk)
  end
end

-- Take a message out of its queue, whatever its state.
local function remove(m, mk, s)
  local q = m.name
  local was = 'visible'
  if redis.call('ZREM', qk(q, 'infl'), mk) == 1 then
    was = 'flight'
  elseif redis.call('ZREM', qk(q, 'dly'), mk) == 1 then
    was = 'delayed'
  elseif m.fifo then
    redis.call('ZREM', qk(q, 'gv'), s.group .. '\0' .. mk)
  else
    redis.call('ZREM', qk(q, 'ready'), mk)
  end
  redis.call('HDEL', qk(q, 'm'), mk)
  redis.call('HDEL', qk(q, 'st'), mk)
  redis.call('ZREM', qk(q, 'sent'), mk)
  if m.fifo then
    local g = s.group
    if redis.call('HINCRBY', qk(q, 'gcount'), g, -1) <= 0 then
      redis.call('HDEL', qk(q, 'gcount'), g)
    end
    if was == 'flight' then
      settle(m, g)
    elseif was == 'visible' then
      offer(m, g)
    end
  end
end

-- Store a message in queue m: visible now, or hidden until visible_at (a delay).
local function add(m, mk, blob, s, sent, visible_at)
  local q = m.name
  redis.call('HSET', qk(q, 'm'), mk, blob)
  putst(m, mk, s)
  redis.call('ZADD', qk(q, 'sent'), sent, mk)
  if m.fifo then redis.call('HINCRBY', qk(q, 'gcount'), s.group, 1) end
  if visible_at then
    redis.call('ZADD', qk(q, 'dly'), visible_at, mk)
  else
    show(m, mk, s, sent)
  end
end

-- Move a message from queue src to queue dest: visible now, never received, keeping
-- id, body, attributes, group and sent time; source names the queue it came from
-- ('' when redriven back).
local function move(src, mk, s, dest, source)
  local blob = redis.call('HGET', qk(src.name, 'm'), mk)
  local sent = redis.call('ZSCORE', qk(src.name, 'sent'), mk)
  remove(src, mk, s)
  local ns = {count = 0, first = '', token = '', source = source, group = s.group}
  add(dest, mk, blob, ns, sent, nil)
end

-- Drop the messages sent at or before the retention cutoff, whatever their state.
local function expire(m)
  local cutoff = NOW - m.ret
  local sentk = qk(m.name, 'sent')
  local head = redis.call('ZRANGE', sentk, 0, 0, 'WITHSCORES')
  if #head == 0 or tonumber(head[2]) > cutoff then return end
  local old = redis.call('ZRANGEBYSCORE', sentk, '-inf', fmt(cutoff))
  for _, mk in ipairs(old) do remove(m, mk, getst(m, mk)) end
end

-- The queue's dead-letter queue, when it has one that exists.
local function dlqmeta(m)
  if not m.dlq then return nil end
  return qmeta(m.dlq)
end
