-- delete_stream: ARGV[3] name: its records and its mappings' checkpoints. {0} or {1}.
local s = smeta(ARGV[3])
if not s then return {1} end
for i = 0, s.shards - 1 do
  redis.call('DEL', sk(s.name, 'x:' .. i), sk(s.name, 'a:' .. i))
end
redis.call('DEL', sk(s.name, 'meta'))
redis.call('SREM', P .. 'streams', s.name)
local prefix = s.name .. '->'
for _, mapping in ipairs(redis.call('SMEMBERS', P .. 'mappings')) do
  if string.sub(mapping, 1, #prefix) == prefix then
    redis.call('DEL', P .. 'cp:' .. mapping)
    redis.call('SREM', P .. 'mappings', mapping)
  end
end
return {0}
