-- shard_stats: ARGV[3] stream. Returns {0, then per shard: first retained sequence ('' when
-- none), latest sequence (-1 when never written), retained records}.
local s = smeta(ARGV[3])
if not s then return {1} end
local horizon = NOW - s.ret
local out = {0}
for i = 0, s.shards - 1 do
  trim(s.name, i, horizon)
  local xk = sk(s.name, 'x:' .. i)
  local head = redis.call('XRANGE', xk, '-', '+', 'COUNT', 1)
  local first = ''
  if #head > 0 then first = string.match(head[1][1], '^(%d+)') end
  out[#out + 1] = first
  out[#out + 1] = redis.call('HGET', sk(s.name, 'meta'), 'latest:' .. i) or '-1'
  out[#out + 1] = redis.call('XLEN', xk)
end
return out
