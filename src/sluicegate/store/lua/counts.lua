-- counts: ARGV[3] queue. Expires first (nothing else observable changes), then returns
-- {0, visible, in flight, delayed, oldest sent ('' when none), dead-lettered, active
-- groups, groups in flight}.
local m = qmeta(ARGV[3])
if not m then return {1} end
local q = m.name
expire(m)
local visible = redis.call('ZCARD', qk(q, m.fifo and 'gv' or 'ready'))
  + redis.call('ZCOUNT', qk(q, 'infl'), '-inf', NOW_S)
  + redis.call('ZCOUNT', qk(q, 'dly'), '-inf', NOW_S)
local in_flight = redis.call('ZCOUNT', qk(q, 'infl'), '(' .. NOW_S, '+inf')
local delayed = redis.call('ZCOUNT', qk(q, 'dly'), '(' .. NOW_S, '+inf')
local oldest = ''
local i = 0
while oldest == '' do
  local chunk = redis.call('ZRANGE', qk(q, 'sent'), i, i + 99, 'WITHSCORES')
  if #chunk == 0 then break end
  for j = 1, #chunk, 2 do
    local at = redis.call('ZSCORE', qk(q, 'dly'), chunk[j])
    if not at or tonumber(at) <= NOW then
      oldest = chunk[j + 1]
      break
    end
  end
  i = i + 100
end
local groups, busy = 0, 0
if m.fifo then
  groups = redis.call('HLEN', qk(q, 'gcount'))
  busy = redis.call('HLEN', qk(q, 'gbusy'))
  -- a group whose in-flight messages' visibility timeouts are all over is free again,
  -- though no receive has moved them yet
  local freed = {}
  for _, mk in ipairs(redis.call('ZRANGEBYSCORE', qk(q, 'infl'), '-inf', NOW_S)) do
    local g = getst(m, mk).group
    freed[g] = (freed[g] or 0) + 1
  end
  for g, n in pairs(freed) do
    if tonumber(redis.call('HGET', qk(q, 'gbusy'), g)) == n then busy = busy - 1 end
  end
end
local dl = redis.call('HGET', qk(q, 'meta'), 'dl') or '0'
return {0, visible, in_flight, delayed, oldest, dl, groups, busy}
