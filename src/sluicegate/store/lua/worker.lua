-- The worker registry: P..'workers' (hash id -> JSON), P..'workers:exp' (zset id ->
-- expiry, epoch seconds of the caller's clock).
-- ARGV[3] op: 'register' (ARGV[4] id, ARGV[5] JSON, ARGV[6] ttl, ARGV[7] '1' exclusive)
-- or 'list'. register returns the live entry's JSON when exclusive refused, else false;
-- list returns id, JSON pairs of the live entries (expired ones are dropped).
local kinfo, kexp = P .. 'workers', P .. 'workers:exp'
for _, w in ipairs(redis.call('ZRANGEBYSCORE', kexp, '-inf', NOW_S)) do
  redis.call('HDEL', kinfo, w)
  redis.call('ZREM', kexp, w)
end
if ARGV[3] == 'register' then
  local id = ARGV[4]
  if ARGV[7] == '1' then
    local current = redis.call('HGET', kinfo, id)
    if current then return current end
  end
  redis.call('HSET', kinfo, id, ARGV[5])
  redis.call('ZADD', kexp, fmt(NOW + tonumber(ARGV[6])), id)
  return false
end
return redis.call('HGETALL', kinfo)
