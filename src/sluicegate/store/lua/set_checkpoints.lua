-- set_checkpoints: ARGV[3] mapping, then pairs (shard, sequence); never lowers one.
local key = P .. 'cp:' .. ARGV[3]
redis.call('SADD', P .. 'mappings', ARGV[3])
for i = 4, #ARGV, 2 do
  local cur = redis.call('HGET', key, ARGV[i])
  if not cur or tonumber(ARGV[i + 1]) > tonumber(cur) then
    redis.call('HSET', key, ARGV[i], ARGV[i + 1])
  end
end
return {0}
