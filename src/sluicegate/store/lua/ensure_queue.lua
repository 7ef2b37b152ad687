-- ensure_queue: ARGV[3] name, [4..12] vt, delay, ret, size, wait, dlq, mrc, cbd, version.
-- Returns {0} or {1, missing dead-letter queue}.
local name, dlq, mrc = ARGV[3], ARGV[9], ARGV[10]
if dlq ~= '' and redis.call('EXISTS', qk(dlq, 'meta')) == 0 then return {1, dlq} end
local mkey = qk(name, 'meta')
local old = redis.call('HMGET', mkey, 'ret', 'dlq', 'mrc')
local args = {}
for i, field in ipairs(QUEUE_FIELDS) do
  args[#args + 1] = field
  args[#args + 1] = ARGV[3 + i]
end
redis.call('HSET', mkey, unpack(args))
if not old[1] then
  redis.call('HSET', mkey, 'seq', 0, 'dl', 0, 'rcheck', 0)
  redis.call('SADD', P .. 'queues', name)
  -- a re-created dead-letter queue: its sources check their visible messages
  for _, other in ipairs(redis.call('SMEMBERS', P .. 'queues')) do
    if redis.call('HGET', qk(other, 'meta'), 'dlq') == name then
      redis.call('HSET', qk(other, 'meta'), 'rcheck', 1)
    end
  end
elseif old[2] ~= dlq or old[3] ~= mrc then
  redis.call('HSET', mkey, 'rcheck', dlq ~= '' and 1 or 0)
end
return {0}
