-- delete_queue: ARGV[3] name. Returns {0} or {1} (no such queue).
local name = ARGV[3]
if redis.call('EXISTS', qk(name, 'meta')) == 0 then return {1} end
for _, part in ipairs(QUEUE_PARTS) do redis.call('DEL', qk(name, part)) end
redis.call('SREM', P .. 'queues', name)
return {0}
