-- purge: ARGV[3] queue. Returns {0, messages deleted (expired ones not counted)}.
local m = qmeta(ARGV[3])
if not m then return {1} end
expire(m)
local n = redis.call('ZCARD', qk(m.name, 'sent'))
for _, part in ipairs(QUEUE_PARTS) do
  if part ~= 'meta' and part ~= 'dedup' and part ~= 'dedupx' then
    redis.call('DEL', qk(m.name, part))
  end
end
return {0, n}
