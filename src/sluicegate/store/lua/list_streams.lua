-- list_streams: returns {0, then per stream: name, shard count, retention}.
local out = {0}
for _, name in ipairs(redis.call('SMEMBERS', P .. 'streams')) do
  local v = redis.call('HMGET', sk(name, 'meta'), 'shards', 'ret')
  if v[1] then
    out[#out + 1] = name
    out[#out + 1] = v[1]
    out[#out + 1] = v[2]
  end
end
return out
