-- ensure_stream: ARGV[3] name, [4] shard count, [5] retention. Returns {0}.
local k = sk(ARGV[3], 'meta')
if redis.call('EXISTS', k) == 1 then
  redis.call('HSET', k, 'ret', ARGV[5])
  return {0}
end
redis.call('HSET', k, 'shards', ARGV[4], 'ret', ARGV[5], 'next', 1)
redis.call('SADD', P .. 'streams', ARGV[3])
return {0}
