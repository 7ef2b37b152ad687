-- stream_checkpoints: ARGV[3] stream. Returns {0, then per mapping: name, HGETALL reply}.
local prefix = ARGV[3] .. '->'
local out = {0}
for _, mapping in ipairs(redis.call('SMEMBERS', P .. 'mappings')) do
  if string.sub(mapping, 1, #prefix) == prefix then
    out[#out + 1] = mapping
    out[#out + 1] = redis.call('HGETALL', P .. 'cp:' .. mapping)
  end
end
return out
