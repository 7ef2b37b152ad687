-- list_queues: returns {0, then per queue: name followed by its attributes}.
local out = {0}
for _, name in ipairs(redis.call('SMEMBERS', P .. 'queues')) do
  local v = redis.call('HMGET', qk(name, 'meta'), unpack(QUEUE_FIELDS))
  if v[1] then
    out[#out + 1] = name
    for i = 1, #QUEUE_FIELDS do out[#out + 1] = v[i] end
  end
end
return out
