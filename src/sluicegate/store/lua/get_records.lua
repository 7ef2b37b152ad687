-- get_records: ARGV[3] stream, [4] shard, [5] start ('-' oldest, 'ts' for [6], else a
-- first stream id), [6] at_timestamp, [7] limit. Returns {0, XRANGE reply}, {1} no such
-- stream, {2} no such shard.
local s = smeta(ARGV[3])
if not s then return {1} end
local shard = tonumber(ARGV[4])
if shard >= s.shards then return {2} end
trim(s.name, ARGV[4], NOW - s.ret)
local start = ARGV[5]
if start == 'ts' then
  local first = redis.call('ZRANGEBYSCORE', sk(s.name, 'a:' .. ARGV[4]), ARGV[6], '+inf',
    'LIMIT', 0, 1)
  if #first == 0 then return {0, {}} end
  start = string.format('%d', tonumber(first[1])) .. '-0'
end
return {0, redis.call('XRANGE', sk(s.name, 'x:' .. ARGV[4]), start, '+', 'COUNT', ARGV[7])}
