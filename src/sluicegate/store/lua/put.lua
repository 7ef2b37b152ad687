-- put: ARGV[3] stream, [4] shard count the caller routed with, then triples (shard,
-- partition key, data). Returns {0, first sequence number}, {1} no such stream, {2} the
-- stream has another shard count now.
local s = smeta(ARGV[3])
if not s then return {1} end
if s.shards ~= tonumber(ARGV[4]) then return {2} end
local mk = sk(s.name, 'meta')
local n = (#ARGV - 4) / 3
local first = redis.call('HINCRBY', mk, 'next', n) - n
local horizon = NOW - s.ret
local last = {}
local latest = {}
for i = 0, n - 1 do
  local shard = ARGV[5 + 3 * i]
  if last[shard] == nil then
    trim(s.name, shard, horizon)
    last[shard] = redis.call('HGET', mk, 'arr:' .. shard) or false
  end
  local arrival = NOW_S
  -- the clock may step back: keep arrivals ordered within the shard
  if last[shard] and tonumber(last[shard]) > NOW then arrival = last[shard] end
  local seq = first + i
  redis.call('XADD', sk(s.name, 'x:' .. shard), string.format('%d', seq) .. '-0',
    'k', ARGV[6 + 3 * i], 'a', arrival, 'd', ARGV[7 + 3 * i])
  redis.call('ZADD', sk(s.name, 'a:' .. shard), arrival, string.format('%016d', seq))
  last[shard] = arrival
  latest[shard] = seq
end
for shard, seq in pairs(latest) do
  redis.call('HSET', mk, 'arr:' .. shard, last[shard], 'latest:' .. shard,
    string.format('%d', seq))
end
return {0, first}
